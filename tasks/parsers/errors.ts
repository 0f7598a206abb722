/**
 * The one error type every parser throws for bad input.
 *
 * Parsers never let another kind of exception escape for malformed data: the pipeline maps a
 * ParseError to a `rejected` upload (with `code` and `message` shown to the user), while any
 * other exception means a bug or an infrastructure problem and is retried. Keeping that line
 * sharp is why the codes are a closed union rather than free strings.
 */

export type ParseErrorCode =
  // FSEQ / ESEQ
  | 'FSEQ_BAD_MAGIC'
  | 'FSEQ_TRUNCATED'
  | 'FSEQ_SIZE_MISMATCH'
  | 'FSEQ_UNSUPPORTED_VERSION'
  | 'FSEQ_UNSUPPORTED_COMPRESSION'
  | 'FSEQ_BAD_HEADER'
  | 'FSEQ_BAD_BLOCK_INDEX'
  | 'FSEQ_BAD_SPARSE_RANGES'
  | 'FSEQ_BAD_VARIABLE_HEADER'
  | 'FSEQ_BAD_EXTENDED_DATA'
  | 'FSEQ_ZERO_CHANNELS'
  | 'FSEQ_ZERO_FRAMES'
  | 'FSEQ_ZERO_STEP_TIME'
  | 'FSEQ_ESEQ_SIZE_REQUIRED'
  // XML / XSQ
  | 'XML_DOCTYPE_FORBIDDEN'
  | 'XML_TOO_LARGE'
  | 'XML_TOO_DEEP'
  | 'XML_MALFORMED'
  | 'XML_EMPTY'
  | 'XSQ_NOT_XLIGHTS'
  // Audio
  | 'AUDIO_UNPARSEABLE';

export interface ParseErrorOptions {
  cause?: unknown;
  /** Machine-readable facts behind the message (expected vs actual sizes, line/column, ...). */
  details?: Record<string, string | number | boolean | null>;
}

export class ParseError extends Error {
  override readonly name = 'ParseError';
  readonly code: ParseErrorCode;
  readonly details: Record<string, string | number | boolean | null>;

  constructor(code: ParseErrorCode, message: string, options: ParseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }

  /** Plain-object form for job results / API `metadataError` fields. */
  toJSON(): { code: ParseErrorCode; message: string; details: Record<string, string | number | boolean | null> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isParseError(value: unknown): value is ParseError {
  return value instanceof ParseError;
}

/** Message of an unknown thrown value, for wrapping third-party errors. */
export function describeError(value: unknown): string {
  if (value instanceof Error) return value.message;
  return String(value);
}
