// Typed application errors. Each carries a stable machine-readable code, the HTTP status it maps
// to and a message a person can act on; the HTTP layer turns them into
// {"error": {"code", "message", ...details}} in one place (src/http/errors.ts).

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what = 'upload') => new AppError(404, 'NOT_FOUND', `${what} not found`);

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(400, code, message, details);

export const forbidden = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(403, code, message, details);

export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(409, code, message, details);

export const unavailable = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(503, code, message, details, { 'Retry-After': '5' });
