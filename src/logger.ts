// One pino logger for the process; Fastify's request logger is a child of it, so every line
// carries the same base fields and request lines carry the request id (reqId).
// LOG_FORMAT: `json` (one object a line, for collectors), `pretty` (pino-pretty: one readable line
// with the fields after the message), `auto` (pretty when the stream is a terminal, else json).
import { pino, type Logger as PinoLogger } from 'pino';
import pinoPretty from 'pino-pretty';

export type Logger = PinoLogger;
export type LogFormat = 'auto' | 'pretty' | 'json';

export interface LoggerOptions {
  format?: LogFormat;
  /** Where lines go: 1 (stdout, the default) or 2 (stderr, for the command line's own output). */
  fd?: 1 | 2;
}

/** Whether lines to `fd` are written for a person. */
export function isPretty(format: LogFormat, fd: 1 | 2 = 1): boolean {
  if (format !== 'auto') return format === 'pretty';
  return Boolean((fd === 1 ? process.stdout : process.stderr).isTTY);
}

export function createLogger(level: string, base: Record<string, unknown> = {}, options: LoggerOptions = {}): Logger {
  const fd = options.fd ?? 1;
  const pretty = isPretty(options.format ?? 'json', fd);
  const settings = {
    level,
    base: { pid: process.pid, ...base },
    // Never log credentials that may appear in headers or URLs.
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.password', '*.secretAccessKey'],
      censor: '[redacted]',
    },
  };
  if (!pretty) return pino(settings, fd === 1 ? undefined : pino.destination({ fd, sync: true }));
  return pino(
    settings,
    pinoPretty({
      destination: fd,
      sync: true,
      colorize: Boolean((fd === 1 ? process.stdout : process.stderr).isTTY),
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,role,cli',
    }),
  );
}
