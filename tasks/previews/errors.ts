/**
 * The content cannot be previewed (a corrupt block, a lying index): recorded as the reason the
 * preview is missing, never retried. Any other error from a renderer is a bug or an outage.
 */
export class PreviewInputError extends Error {
  override readonly name = 'PreviewInputError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
