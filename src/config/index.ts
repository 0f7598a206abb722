// Configuration from the environment, validated once at start. Every problem is reported at the
// same time, one line each, naming the variable, the value and what was expected, so an operator
// fixes a broken deployment in one round trip instead of one variable per restart.
import path from 'node:path';
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

export const KINDS = ['fseq', 'xsq', 'audio', 'video', 'image', 'other'] as const;
export type Kind = (typeof KINDS)[number];

/**
 * The webhook events (DESIGN.md), written by the outbox trigger in drizzle/0004_webhook_outbox.sql;
 * `file.restored` (an archived file can be downloaded again) by src/db/tiers.ts.
 */
export const WEBHOOK_EVENT_TYPES = [
  'upload.created',
  'upload.completed',
  'file.ready',
  'file.rejected',
  'file.infected',
  'file.failed',
  'file.deleted',
  'file.expired',
  'file.restored',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** S3 us-east-1 list prices, USD per GiB-month: STANDARD, STANDARD_IA, GLACIER Flexible Retrieval, DEEP_ARCHIVE. */
export const TIER_LIST_PRICES = { standard: 0.023, infrequent: 0.0125, glacier: 0.0036, deepArchive: 0.00099 } as const;

const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: 'expected true or false' });
      return z.NEVER;
    });

const size = (fallback: number | null, { allowUnlimited = false } = {}) =>
  z
    .string()
    .optional()
    .transform((v, ctx): number | null => {
      if (v === undefined || v.trim() === '') return fallback;
      if (allowUnlimited && ['unlimited', 'none', '0'].includes(v.trim().toLowerCase())) return null;
      const parsed = parseSize(v);
      if (parsed === null || parsed <= 0) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a size such as 500MB, 5GiB or a number of bytes${allowUnlimited ? ', or "unlimited"' : ''}`,
        });
        return z.NEVER;
      }
      return parsed;
    });

const duration = <F extends number | null>(fallback: F) =>
  z
    .string()
    .optional()
    .transform((v, ctx): number | F => {
      if (v === undefined || v.trim() === '') return fallback;
      const parsed = parseDuration(v);
      if (parsed === null) {
        ctx.addIssue({ code: 'custom', message: 'expected a duration such as 30s, 24h or 7d' });
        return z.NEVER;
      }
      return parsed;
    });

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `expected a whole number from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const url = (protocols: string[]) =>
  optionalString.refine(
    (v) => {
      if (v === undefined) return true;
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected an absolute URL (${protocols.join(' or ')})` },
  );

const enumOf = <T extends string>(values: readonly T[], fallback: T) =>
  z
    .string()
    .optional()
    .transform((v, ctx): T => {
      if (v === undefined || v.trim() === '') return fallback;
      const s = v.trim().toLowerCase() as T;
      if (values.includes(s)) return s;
      ctx.addIssue({ code: 'custom', message: `expected one of ${values.join(', ')}` });
      return z.NEVER;
    });

const kindList = z
  .string()
  .optional()
  .transform((v, ctx): Kind[] => {
    if (v === undefined || v.trim() === '') return ['fseq', 'xsq', 'audio', 'video', 'image'];
    const items = v
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean);
    const bad = items.filter((s) => !(KINDS as readonly string[]).includes(s));
    if (bad.length > 0 || items.length === 0) {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of ${KINDS.join(', ')}` });
      return z.NEVER;
    }
    return [...new Set(items)] as Kind[];
  });

// `fseq=1GB,image=20MB`: per-kind size limits replacing the type policy's defaults.
const kindSizes = z
  .string()
  .optional()
  .transform((v, ctx): Partial<Record<Kind, number>> => {
    const result: Partial<Record<Kind, number>> = {};
    if (v === undefined || v.trim() === '') return result;
    for (const item of v.split(',')) {
      const [kind, limit] = item.split('=').map((part) => part.trim());
      const bytes = limit ? parseSize(limit) : null;
      if (!kind || !(KINDS as readonly string[]).includes(kind) || kind === 'other' || bytes === null || bytes <= 0) {
        ctx.addIssue({ code: 'custom', message: 'expected kind=size pairs such as "fseq=1GB,image=20MB" (kinds: fseq, xsq, audio, video, image)' });
        return z.NEVER;
      }
      result[kind as Kind] = bytes;
    }
    return result;
  });

// `audio=90d,fseq=30d,video=off`: per-kind storage-tier durations replacing TIER_*_AFTER for that
// kind (`off`: never).
const kindDurations = z
  .string()
  .optional()
  .transform((v, ctx): Partial<Record<Kind, number | null>> => {
    const result: Partial<Record<Kind, number | null>> = {};
    if (v === undefined || v.trim() === '') return result;
    for (const item of v.split(',')) {
      const [kind, value] = item.split('=').map((part) => part.trim().toLowerCase());
      const off = value === 'off' || value === 'never';
      const ms = value && !off ? parseDuration(value) : null;
      if (!kind || !(KINDS as readonly string[]).includes(kind) || (!off && ms === null)) {
        ctx.addIssue({ code: 'custom', message: `expected kind=duration pairs such as "audio=90d,fseq=30d,video=off" (kinds: ${KINDS.join(', ')})` });
        return z.NEVER;
      }
      result[kind as Kind] = off ? null : ms;
    }
    return result;
  });

// A price in US dollars per GiB-month (`0.023`).
const price = (fallback: number | null) =>
  z
    .string()
    .optional()
    .transform((v, ctx): number | null => {
      if (v === undefined || v.trim() === '') return fallback;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) {
        ctx.addIssue({ code: 'custom', message: 'expected a price per GiB-month such as 0.023' });
        return z.NEVER;
      }
      return n;
    });

// `1KiB/10s`: a body must bring at least this many bytes in each such window; `0` or `off` disables.
const minRate = z
  .string()
  .optional()
  .transform((v, ctx): { bytes: number; windowMs: number } | null => {
    if (v === undefined || v.trim() === '') return { bytes: 1024, windowMs: 10_000 };
    if (['0', 'off', 'none'].includes(v.trim().toLowerCase())) return null;
    const [amount, window, extra] = v.split('/');
    const bytes = amount ? parseSize(amount) : null;
    const windowMs = window ? parseDuration(window) : null;
    if (extra !== undefined || bytes === null || bytes <= 0 || windowMs === null || windowMs < 100) {
      ctx.addIssue({ code: 'custom', message: 'expected bytes per window such as 1KiB/10s, or off' });
      return z.NEVER;
    }
    return { bytes, windowMs };
  });

// `file.ready,file.rejected`: the webhook events the configured endpoint gets; unset = all.
const webhookEventList = z
  .string()
  .optional()
  .transform((v, ctx): WebhookEventType[] | null => {
    if (v === undefined || v.trim() === '') return null;
    const items = v
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean);
    if (items.length === 0 || items.some((s) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(s))) {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of ${WEBHOOK_EVENT_TYPES.join(', ')}` });
      return z.NEVER;
    }
    return [...new Set(items)] as WebhookEventType[];
  });

/** A Standard Webhooks secret: `whsec_` and the base64 of at least 16 bytes. */
export function isWebhookSecret(v: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(v);
  return m !== null && Buffer.from(m[1]!, 'base64').length >= 16;
}

// `whsec_new whsec_old` (or comma-separated): during a rotation both sign, the new one first.
const webhookSecrets = z
  .string()
  .optional()
  .transform((v, ctx): string[] => {
    const items = (v ?? '').split(/[\s,]+/).filter(Boolean);
    if (items.length > 2 || items.some((s) => !isWebhookSecret(s))) {
      ctx.addIssue({
        code: 'custom',
        message: 'expected one or two Standard Webhooks secrets (whsec_ followed by the base64 of at least 16 random bytes), separated by a space or comma',
      });
      return z.NEVER;
    }
    return [...new Set(items)];
  });

const tusPath = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const p = (v ?? '/files').trim().replace(/\/+$/, '');
    if (!/^\/[A-Za-z0-9._~\-/]+$/.test(p) || p.startsWith('/api') || p.includes('//')) {
      ctx.addIssue({ code: 'custom', message: 'expected a path such as /files (not under /api)' });
      return z.NEVER;
    }
    return p;
  });

// `https://app.example,http://localhost:5173`: web origins (besides the server's own and
// PUBLIC_URL's) whose pages may read answers; `*` for any. Unset: none with AUTH_MODE=none, any with
// AUTH_MODE=jwt (src/http/origin-policy.ts).
const originList = z
  .string()
  .optional()
  .transform((v, ctx): string[] | null => {
    if (v === undefined || v.trim() === '') return null;
    const items = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.includes('*')) {
      if (items.length === 1) return ['*'];
      ctx.addIssue({ code: 'custom', message: 'expected either * alone or a list of origins' });
      return z.NEVER;
    }
    const origins: string[] = [];
    for (const item of items) {
      let url: URL | null = null;
      try {
        url = new URL(item);
      } catch {
        url = null;
      }
      if (
        url === null ||
        item.includes('*') ||
        !['http:', 'https:'].includes(url.protocol) ||
        url.username !== '' ||
        url.password !== '' ||
        url.pathname !== '/' ||
        url.search !== '' ||
        url.hash !== '' ||
        !/^https?:\/\/[^/?#]+\/?$/i.test(item)
      ) {
        ctx.addIssue({ code: 'custom', message: 'expected a comma-separated list of origins such as https://app.example,http://localhost:5173 (scheme://host[:port], no path), or *' });
        return z.NEVER;
      }
      origins.push(url.origin);
    }
    return items.length === 0 ? null : [...new Set(origins)];
  });

// Fastify accepts true/false, a hop count or a list of addresses/CIDRs for trustProxy.
const trustProxy = z
  .string()
  .optional()
  .transform((v, ctx): boolean | number | string => {
    if (v === undefined || v.trim() === '') return false;
    const s = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off'].includes(s)) return false;
    if (/^\d+$/.test(s)) return Number(s);
    if (/^[0-9a-f.:/,\s]+$/i.test(s)) return s;
    ctx.addIssue({ code: 'custom', message: 'expected true, false, a hop count or a list of proxy addresses' });
    return z.NEVER;
  });

const envSchema = z.object({
  HOST: optionalString.transform((v) => v ?? '127.0.0.1'),
  PORT: int(1080, 0, 65535),
  PUBLIC_URL: url(['http:', 'https:']),
  CORS_ORIGINS: originList,
  TRUST_PROXY: trustProxy,
  TUS_PATH: tusPath,
  DATA_DIR: optionalString.transform((v) => path.resolve(v ?? './data')),
  STORAGE: enumOf(['file', 's3'] as const, 'file'),
  FILE_STORAGE_DIR: optionalString,
  S3_BUCKET: optionalString,
  S3_ENDPOINT: url(['http:', 'https:']),
  S3_REGION: optionalString.transform((v) => v ?? 'us-east-1'),
  S3_ACCESS_KEY_ID: optionalString,
  S3_SECRET_ACCESS_KEY: optionalString,
  S3_FORCE_PATH_STYLE: bool(false),
  S3_PART_SIZE: size(8 * 2 ** 20),
  S3_PRESIGN_EXPIRY: duration(15 * 60_000),
  S3_PUBLIC_ENDPOINT: url(['http:', 'https:']),
  DATABASE_URL: url(['postgres:', 'postgresql:']),
  DATABASE_POOL_SIZE: int(20, 2, 1000),
  ROLE: enumOf(['all', 'api', 'worker'] as const, 'all'),
  WORKER_CONCURRENCY: int(4, 1, 256),
  JOB_MAX_ATTEMPTS: int(8, 1, 100),
  AUTH_MODE: enumOf(['none', 'jwt'] as const, 'none'),
  AUTH_JWT_SECRET: optionalString,
  AUTH_JWKS_URL: url(['http:', 'https:']),
  AUTH_JWT_ISSUER: optionalString,
  AUTH_JWT_AUDIENCE: optionalString,
  AUTH_ALLOW_NONE_ON_PUBLIC_HOST: bool(false),
  CLAMAV_HOST: optionalString,
  CLAMAV_PORT: int(3310, 1, 65535),
  CLAMAV_SOCKET: optionalString,
  CLAMAV_TIMEOUT: duration(60_000),
  // clamd's StreamMaxLength (clamd's `25M` is 25MiB here): larger files are not sent to clamd at all.
  CLAMAV_STREAM_MAX_LENGTH: size(null),
  SCAN_REQUIRED: bool(false),
  // The ffmpeg that decodes AAC / ALAC audio for waveforms: a path or a name on PATH; `off` disables.
  FFMPEG_PATH: optionalString.transform((v) => (v === undefined ? 'ffmpeg' : v.toLowerCase() === 'off' ? null : v)),
  MAX_UPLOAD_SIZE: size(5 * 2 ** 30),
  ALLOWED_KINDS: kindList,
  KIND_MAX_SIZES: kindSizes,
  UPLOAD_EXPIRY: duration(24 * 3_600_000),
  REJECTED_RETENTION: duration(7 * 86_400_000),
  QUARANTINE_RETENTION: duration(30 * 86_400_000),
  RECONCILE_AFTER: duration(5 * 60_000),
  LIFECYCLE_SCHEDULE: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const schedule = v?.trim() || '0 * * * *';
      if (!/^(\S+\s+){4}\S+$/.test(schedule)) {
        ctx.addIssue({ code: 'custom', message: 'expected a cron schedule of five fields, such as "0 * * * *" (hourly)' });
        return z.NEVER;
      }
      return schedule;
    }),
  ORPHAN_GRACE: duration(3_600_000),
  // Storage tiers (S3/R2): blobs not downloaded for this long move to STANDARD_IA / the archive
  // class (unset: never).
  TIER_INFREQUENT_AFTER: duration(null),
  TIER_ARCHIVE_AFTER: duration(null),
  TIER_ARCHIVE_CLASS: enumOf(['glacier', 'deep_archive'] as const, 'glacier'),
  TIER_RESTORE_DAYS: int(7, 1, 365),
  TIER_KIND_INFREQUENT_AFTER: kindDurations,
  TIER_KIND_ARCHIVE_AFTER: kindDurations,
  // Estimated monthly cost in the tier analytics (USD per GiB-month; defaults: S3 us-east-1 list
  // prices; archive: GLACIER Flexible Retrieval or DEEP_ARCHIVE by TIER_ARCHIVE_CLASS).
  TIER_PRICE_STANDARD: price(TIER_LIST_PRICES.standard),
  TIER_PRICE_INFREQUENT: price(TIER_LIST_PRICES.infrequent),
  TIER_PRICE_ARCHIVE: price(null),
  // STORAGE=file: the bucket archived files go to (the S3_* settings' meaning); unset: local files stay.
  ARCHIVE_S3_BUCKET: optionalString,
  ARCHIVE_S3_ENDPOINT: url(['http:', 'https:']),
  ARCHIVE_S3_REGION: optionalString.transform((v) => v ?? 'us-east-1'),
  ARCHIVE_S3_ACCESS_KEY_ID: optionalString,
  ARCHIVE_S3_SECRET_ACCESS_KEY: optionalString,
  ARCHIVE_S3_FORCE_PATH_STYLE: bool(false),
  SHUTDOWN_TIMEOUT: duration(30_000),
  // A connection that sends nothing for this long is closed (stalled bodies, slowloris).
  IDLE_TIMEOUT: duration(60_000),
  // Upload requests (PATCH, POST with a body) one owner may have in flight in a process; beyond it
  // 429 TOO_MANY_UPLOADS. Unset: 16 with AUTH_MODE=jwt, unlimited with AUTH_MODE=none (one owner).
  OWNER_MAX_CONCURRENT_UPLOADS: int(-1, 0, 100_000),
  // A request body delivering less than this (`<size>/<duration>`) is ended, keeping what arrived.
  UPLOAD_MIN_RATE: minRate,
  QUOTA_MAX_BYTES: size(null, { allowUnlimited: true }),
  QUOTA_MAX_FILES: z
    .string()
    .optional()
    .transform((v, ctx): number | null => {
      if (v === undefined || v.trim() === '' || ['unlimited', 'none', '0'].includes(v.trim().toLowerCase())) return null;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 1) {
        ctx.addIssue({ code: 'custom', message: 'expected a whole number of files, or "unlimited"' });
        return z.NEVER;
      }
      return n;
    }),
  QUOTA_MAX_FILE_SIZE: size(null, { allowUnlimited: true }),
  QUOTA_MONTHLY_BYTES: size(null, { allowUnlimited: true }),
  // Abuse bounds for every owner (not per-owner overrides): what unfinished uploads may hold.
  QUOTA_MAX_UNFINISHED_UPLOADS: int(100, 0, 1_000_000),
  QUOTA_MAX_RESERVED_BYTES: size(50 * 2 ** 30, { allowUnlimited: true }),
  // At most this many partial uploads in one `Upload-Concat: final;…` (each listed use counts).
  CONCAT_MAX_PARTS: int(100, 1, 10_000),
  WEBHOOK_URL: url(['http:', 'https:']),
  WEBHOOK_SECRET: webhookSecrets,
  WEBHOOK_EVENTS: webhookEventList,
  WEBHOOK_TIMEOUT: duration(10_000),
  // graphile-worker waits exp(min(attempt, 10)) s after a failed attempt: 13 attempts span ~22 h.
  WEBHOOK_MAX_ATTEMPTS: int(13, 1, 100),
  WEBHOOK_ALLOW_PRIVATE: bool(false),
  // Events whose deliveries all succeeded are purged by the lifecycle sweep after this long.
  WEBHOOK_RETENTION: duration(30 * 86_400_000),
  // Asked before every creation (src/webhooks/pre-create.ts); signed with WEBHOOK_SECRET.
  PRE_CREATE_HOOK_URL: url(['http:', 'https:']),
  PRE_CREATE_HOOK_TIMEOUT: duration(5_000),
  PRE_CREATE_HOOK_FAIL_OPEN: bool(false),
  LOG_LEVEL: enumOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
  // pretty: readable lines; json: one object a line; auto: pretty on a terminal, json otherwise.
  LOG_FORMAT: enumOf(['auto', 'pretty', 'json'] as const, 'auto'),
});

type Env = z.output<typeof envSchema>;

/** The per-kind tier durations: a kind named in either variable gets its own pair (the other one unset: the global value). */
function kindTierDurations(infrequent: Partial<Record<Kind, number | null>>, archive: Partial<Record<Kind, number | null>>) {
  const byKind: Partial<Record<Kind, { infrequentAfterMs?: number | null; archiveAfterMs?: number | null }>> = {};
  for (const kind of KINDS) {
    if (kind in infrequent || kind in archive) {
      byKind[kind] = {
        ...(kind in infrequent ? { infrequentAfterMs: infrequent[kind] ?? null } : {}),
        ...(kind in archive ? { archiveAfterMs: archive[kind] ?? null } : {}),
      };
    }
  }
  return byKind;
}

function toConfig(e: Env) {
  return {
    host: e.HOST,
    port: e.PORT,
    publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
    corsOrigins: e.CORS_ORIGINS,
    trustProxy: e.TRUST_PROXY,
    tusPath: e.TUS_PATH,
    dataDir: e.DATA_DIR,
    storage: e.STORAGE,
    fileStorageDir: path.resolve(e.FILE_STORAGE_DIR ?? path.join(e.DATA_DIR, 'files')),
    s3: {
      bucket: e.S3_BUCKET ?? '',
      endpoint: e.S3_ENDPOINT,
      region: e.S3_REGION,
      accessKeyId: e.S3_ACCESS_KEY_ID,
      secretAccessKey: e.S3_SECRET_ACCESS_KEY,
      forcePathStyle: e.S3_FORCE_PATH_STYLE,
      partSize: e.S3_PART_SIZE ?? 8 * 2 ** 20,
      // How long a presigned request of a direct-to-bucket upload stays valid.
      presignExpiryMs: e.S3_PRESIGN_EXPIRY,
      // Where browsers and apps reach the bucket, when the server reaches it by another name.
      publicEndpoint: e.S3_PUBLIC_ENDPOINT,
    },
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    role: e.ROLE,
    workerConcurrency: e.WORKER_CONCURRENCY,
    jobMaxAttempts: e.JOB_MAX_ATTEMPTS,
    auth: {
      mode: e.AUTH_MODE,
      jwtSecret: e.AUTH_JWT_SECRET,
      jwksUrl: e.AUTH_JWKS_URL,
      issuer: e.AUTH_JWT_ISSUER,
      audience: e.AUTH_JWT_AUDIENCE,
      allowNoneOnPublicHost: e.AUTH_ALLOW_NONE_ON_PUBLIC_HOST,
    },
    clamav: {
      host: e.CLAMAV_HOST,
      port: e.CLAMAV_PORT,
      socket: e.CLAMAV_SOCKET,
      timeoutMs: e.CLAMAV_TIMEOUT,
      maxStreamBytes: e.CLAMAV_STREAM_MAX_LENGTH,
    },
    scanRequired: e.SCAN_REQUIRED,
    ffmpegPath: e.FFMPEG_PATH,
    maxUploadSize: e.MAX_UPLOAD_SIZE ?? 5 * 2 ** 30,
    allowedKinds: e.ALLOWED_KINDS,
    kindMaxSizes: e.KIND_MAX_SIZES,
    uploadExpiryMs: e.UPLOAD_EXPIRY,
    rejectedRetentionMs: e.REJECTED_RETENTION,
    webhookRetentionMs: e.WEBHOOK_RETENTION,
    quarantineRetentionMs: e.QUARANTINE_RETENTION,
    reconcileAfterMs: e.RECONCILE_AFTER,
    lifecycleSchedule: e.LIFECYCLE_SCHEDULE,
    orphanGraceMs: e.ORPHAN_GRACE,
    tiers: {
      infrequentAfterMs: e.TIER_INFREQUENT_AFTER,
      archiveAfterMs: e.TIER_ARCHIVE_AFTER,
      // The S3 storage class name.
      archiveClass: e.TIER_ARCHIVE_CLASS.toUpperCase() as 'GLACIER' | 'DEEP_ARCHIVE',
      restoreDays: e.TIER_RESTORE_DAYS,
      byKind: kindTierDurations(e.TIER_KIND_INFREQUENT_AFTER, e.TIER_KIND_ARCHIVE_AFTER),
      pricesPerGibMonth: {
        standard: e.TIER_PRICE_STANDARD ?? TIER_LIST_PRICES.standard,
        infrequent: e.TIER_PRICE_INFREQUENT ?? TIER_LIST_PRICES.infrequent,
        archive: e.TIER_PRICE_ARCHIVE ?? (e.TIER_ARCHIVE_CLASS === 'deep_archive' ? TIER_LIST_PRICES.deepArchive : TIER_LIST_PRICES.glacier),
      },
    },
    archive: e.ARCHIVE_S3_BUCKET
      ? {
          bucket: e.ARCHIVE_S3_BUCKET,
          endpoint: e.ARCHIVE_S3_ENDPOINT,
          region: e.ARCHIVE_S3_REGION,
          accessKeyId: e.ARCHIVE_S3_ACCESS_KEY_ID,
          secretAccessKey: e.ARCHIVE_S3_SECRET_ACCESS_KEY,
          forcePathStyle: e.ARCHIVE_S3_FORCE_PATH_STYLE,
        }
      : null,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT,
    idleTimeoutMs: e.IDLE_TIMEOUT,
    ownerMaxConcurrentUploads: e.OWNER_MAX_CONCURRENT_UPLOADS >= 0 ? e.OWNER_MAX_CONCURRENT_UPLOADS : e.AUTH_MODE === 'none' ? 0 : 16,
    uploadMinRate: e.UPLOAD_MIN_RATE,
    concatMaxParts: e.CONCAT_MAX_PARTS,
    quota: {
      maxBytes: e.QUOTA_MAX_BYTES,
      maxFiles: e.QUOTA_MAX_FILES,
      maxFileSize: e.QUOTA_MAX_FILE_SIZE,
      monthlyBytes: e.QUOTA_MONTHLY_BYTES,
      maxUnfinishedUploads: e.QUOTA_MAX_UNFINISHED_UPLOADS === 0 ? null : e.QUOTA_MAX_UNFINISHED_UPLOADS,
      maxReservedBytes: e.QUOTA_MAX_RESERVED_BYTES,
    },
    webhook: {
      url: e.WEBHOOK_URL,
      secrets: e.WEBHOOK_SECRET,
      events: e.WEBHOOK_EVENTS,
      timeoutMs: e.WEBHOOK_TIMEOUT,
      maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
    },
    preCreateHook: {
      url: e.PRE_CREATE_HOOK_URL,
      timeoutMs: e.PRE_CREATE_HOOK_TIMEOUT,
      failOpen: e.PRE_CREATE_HOOK_FAIL_OPEN,
    },
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
  };
}

export type Config = ReturnType<typeof toConfig>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/** Rules that relate several variables to each other. */
function crossCheck(e: Env, raw: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  if (e.STORAGE === 's3' && !e.S3_BUCKET) {
    problems.push('S3_BUCKET is not set: required when STORAGE=s3');
  }
  if (e.AUTH_MODE === 'jwt' && !e.AUTH_JWT_SECRET && !e.AUTH_JWKS_URL) {
    problems.push('AUTH_JWT_SECRET and AUTH_JWKS_URL are both unset: AUTH_MODE=jwt needs one of them');
  }
  if (e.AUTH_MODE === 'jwt' && e.AUTH_JWT_SECRET && e.AUTH_JWT_SECRET.length < 32) {
    problems.push('AUTH_JWT_SECRET is too short: use at least 32 characters for HS256');
  }
  if (e.AUTH_MODE === 'none' && !LOOPBACK_HOSTS.has(e.HOST) && !e.AUTH_ALLOW_NONE_ON_PUBLIC_HOST) {
    problems.push(
      `AUTH_MODE=none with HOST=${JSON.stringify(raw.HOST)}: anyone on the network could upload and read files; ` +
        'set AUTH_MODE=jwt, bind to 127.0.0.1, or set AUTH_ALLOW_NONE_ON_PUBLIC_HOST=true to accept the risk',
    );
  }
  if (e.CLAMAV_HOST && e.CLAMAV_SOCKET) {
    problems.push('CLAMAV_HOST and CLAMAV_SOCKET are both set: choose one way to reach clamd');
  }
  if (e.SCAN_REQUIRED && !e.CLAMAV_HOST && !e.CLAMAV_SOCKET) {
    problems.push('SCAN_REQUIRED=true but no scanner is configured: set CLAMAV_HOST or CLAMAV_SOCKET');
  }
  if (e.S3_PART_SIZE !== null && e.S3_PART_SIZE < 5 * 2 ** 20) {
    problems.push(`S3_PART_SIZE=${JSON.stringify(raw.S3_PART_SIZE)}: S3 needs parts of at least 5MiB`);
  }
  if (e.WEBHOOK_URL && e.WEBHOOK_SECRET.length === 0) {
    problems.push('WEBHOOK_URL is set but WEBHOOK_SECRET is not: webhooks are always signed (a whsec_ secret)');
  }
  if (e.TIER_INFREQUENT_AFTER !== null && e.TIER_ARCHIVE_AFTER !== null && e.TIER_ARCHIVE_AFTER <= e.TIER_INFREQUENT_AFTER) {
    problems.push('TIER_ARCHIVE_AFTER must be longer than TIER_INFREQUENT_AFTER: files go to infrequent access first');
  }
  for (const kind of KINDS) {
    const infrequent = kind in e.TIER_KIND_INFREQUENT_AFTER ? (e.TIER_KIND_INFREQUENT_AFTER[kind] ?? null) : e.TIER_INFREQUENT_AFTER;
    const archive = kind in e.TIER_KIND_ARCHIVE_AFTER ? (e.TIER_KIND_ARCHIVE_AFTER[kind] ?? null) : e.TIER_ARCHIVE_AFTER;
    // Only a kind naming both: with one inherited, an archive due first simply skips infrequent access.
    const named = kind in e.TIER_KIND_INFREQUENT_AFTER && kind in e.TIER_KIND_ARCHIVE_AFTER;
    if (named && infrequent !== null && archive !== null && archive <= infrequent) {
      problems.push(`TIER_KIND_ARCHIVE_AFTER for ${kind} must be longer than its infrequent-access duration: files go to infrequent access first`);
    }
  }
  if (e.ARCHIVE_S3_BUCKET && e.STORAGE !== 'file') {
    problems.push('ARCHIVE_S3_BUCKET is set with STORAGE=s3: an archive bucket is for STORAGE=file (S3 archives objects in place)');
  }
  if (!e.ARCHIVE_S3_BUCKET && (raw.ARCHIVE_S3_ENDPOINT || raw.ARCHIVE_S3_ACCESS_KEY_ID)) {
    problems.push('ARCHIVE_S3_BUCKET is not set but other ARCHIVE_S3_* settings are: name the archive bucket');
  }
  if (e.PRE_CREATE_HOOK_URL && e.WEBHOOK_SECRET.length === 0) {
    problems.push('PRE_CREATE_HOOK_URL is set but WEBHOOK_SECRET is not: the hook\'s requests are signed with it (a whsec_ secret)');
  }
  return problems;
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      return `${name}=${JSON.stringify(env[name] ?? '')}: ${issue.message}`;
    });
    throw new ConfigError(problems);
  }
  const problems = crossCheck(result.data, env);
  if (problems.length > 0) throw new ConfigError(problems);
  return toConfig(result.data);
}

/** Every setting name the environment may carry (what a compose file or a .env file may set). */
export const CONFIG_NAMES: readonly string[] = Object.keys(envSchema.shape);
