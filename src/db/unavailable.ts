// Whether an error means the database cannot be reached (down, restarting, out of connections)
// rather than that a statement failed: the first is worth a 503 and a retry later, the second is
// an answer about the statement itself.

/** Connection-level failures and server shutdowns, from postgres.js / PostgreSQL. */
const DB_UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

function errorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.cause?.code === 'string') return e.cause.code;
  return undefined;
}

/** True for a connection-level failure, also when wrapped (drizzle puts the driver's in `cause`). */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && DB_UNAVAILABLE_CODES.has(code);
}
