// One pino logger for the process; Fastify's request logger is a child of it, so every line
// carries the same base fields and request lines carry the request id.
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...base },
    // Never log credentials that may appear in headers or URLs.
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.password', '*.secretAccessKey'],
      censor: '[redacted]',
    },
  });
}
