// The pre-create hook (PRE_CREATE_HOOK_URL): before an upload is created, by any protocol (tus,
// IETF draft, direct-to-bucket), the application may accept it (optionally attaching metadata of
// its own) or refuse it. The hook returns a decision; `admitUpload` turns a refusal into the
// client's error, so every creation path applies the same rule.
//
// The HTTP hook POSTs the PreCreateRequest as JSON, signed like the webhooks (Standard Webhooks,
// with the WEBHOOK_SECRET secrets), through the webhooks' sender: no redirects, a timeout, private
// addresses refused unless WEBHOOK_ALLOW_PRIVATE. 2xx accepts (a JSON `{"metadata": {...}}` is
// attached to the record); 4xx refuses with the application's `message`; anything else (5xx,
// a redirect, a timeout, no connection, an unusable 2xx body) means the application could not be
// asked: 503 with Retry-After, or an acceptance without metadata with PRE_CREATE_HOOK_FAIL_OPEN.
import { randomUUID } from 'node:crypto';
import type { Config, Kind } from '../config/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { preCreateHookAnswers } from '../metrics.js';
import { sendWebhook, type SendResult } from './send.js';

export type UploadProtocol = 'tus' | 'ietf' | 's3-direct';

/** What the application is told about an upload about to be created. */
export interface PreCreateRequest {
  owner: string;
  filename: string | null;
  size: number | null;
  mimeType: string | null;
  kind: Kind;
  metadata: Record<string, string>;
  protocol: UploadProtocol;
}

export type PreCreateDecision =
  | { action: 'accept'; metadata?: Record<string, unknown> }
  | { action: 'refuse'; status: number; code: string; message: string; retryAfter?: number };

export type PreCreateHook = (request: PreCreateRequest) => Promise<PreCreateDecision>;

/** tus metadata as the application sees it: a key without a value (a flag) has the empty string. */
export function metadataForHook(metadata: Record<string, string | null>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key, value ?? '']));
}

/** No PRE_CREATE_HOOK_URL: every creation is accepted as is. */
export const acceptAll: PreCreateHook = async () => ({ action: 'accept' });

/**
 * Asks `hook` about a creation: resolves with the application's metadata (null when it attached
 * none), or throws the AppError the client gets for a refusal.
 */
export async function admitUpload(hook: PreCreateHook, request: PreCreateRequest): Promise<Record<string, unknown> | null> {
  const decision = await hook(request);
  if (decision.action === 'accept') return decision.metadata ?? null;
  const headers: Record<string, string> = decision.retryAfter !== undefined ? { 'Retry-After': String(decision.retryAfter) } : {};
  throw new AppError(decision.status, decision.code, decision.message, {}, headers);
}

/** An accepting answer is at most this many bytes (its metadata is stored on the record). */
export const APP_METADATA_LIMIT = 8 * 1024;
/** A refusal's message is cut to this many characters. */
export const REFUSAL_MESSAGE_LIMIT = 300;
/** A creation refused because the hook could not be asked may be retried after this many seconds. */
export const UNAVAILABLE_RETRY_AFTER = 5;

const DEFAULT_REFUSAL = 'the application refused this upload';

function parseJson(text: string | null): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * What the client is told of a refusal: the JSON answer's `message` on one line (control and
 * bidirectional-override characters removed), trimmed and cut; never the raw body (an HTML page).
 */
export function refusalMessage(body: string | null): string {
  const json = parseJson(body);
  const message = isObject(json) && typeof json.message === 'string' ? json.message : '';
  const clean = message.replace(/[\p{Cc}\u202a-\u202e\u2066-\u2069]+/gu, ' ').replace(/\s+/g, ' ').trim();
  if (!clean) return DEFAULT_REFUSAL;
  const chars = Array.from(clean);
  return chars.length > REFUSAL_MESSAGE_LIMIT ? `${chars.slice(0, REFUSAL_MESSAGE_LIMIT - 1).join('')}…` : clean;
}

/**
 * The metadata of an accepting answer (null: none), or why the answer cannot be used. The status
 * decides; a body matters only when it is a JSON object with `metadata`.
 */
export function acceptedMetadata(body: string | null, truncated: boolean): { metadata: Record<string, unknown> | null } | { invalid: string } {
  if (truncated) return { invalid: `the answer is larger than ${APP_METADATA_LIMIT} bytes` };
  const json = parseJson(body);
  if (!isObject(json) || json.metadata === undefined || json.metadata === null) return { metadata: null };
  if (!isObject(json.metadata)) return { invalid: '"metadata" is not a JSON object' };
  return { metadata: json.metadata };
}

export type HookOutcome = PreCreateDecision | { action: 'unavailable'; reason: string };

/** What the application's answer means. */
export function outcomeOf(result: Pick<SendResult, 'status' | 'body' | 'truncated' | 'error'>): HookOutcome {
  const { status } = result;
  if (status !== null && status >= 200 && status < 300) {
    const accepted = acceptedMetadata(result.body, result.truncated);
    if ('invalid' in accepted) return { action: 'unavailable', reason: `unusable answer: ${accepted.invalid}` };
    return accepted.metadata ? { action: 'accept', metadata: accepted.metadata } : { action: 'accept' };
  }
  if (status !== null && status >= 400 && status < 500) {
    return { action: 'refuse', status: 403, code: 'UPLOAD_REFUSED', message: refusalMessage(result.body) };
  }
  return { action: 'unavailable', reason: result.error ?? `the hook answered ${status}` };
}

export interface HttpPreCreateHookOptions {
  url: string;
  timeoutMs: number;
  /** Accept (without metadata) when the application cannot be asked. */
  failOpen: boolean;
  /** Standard Webhooks secrets: one `v1,` signature each. */
  secrets: string[];
  allowPrivate: boolean;
  log: Pick<Logger, 'warn'>;
}

export function httpPreCreateHook(options: HttpPreCreateHookOptions): PreCreateHook {
  return async (request) => {
    const result = await sendWebhook(
      { url: options.url, id: randomUUID(), body: JSON.stringify(request), secrets: options.secrets },
      { timeoutMs: options.timeoutMs, allowPrivate: options.allowPrivate, bodyLimit: APP_METADATA_LIMIT },
    );
    const outcome = outcomeOf(result);
    if (outcome.action !== 'unavailable') {
      preCreateHookAnswers.inc({ outcome: outcome.action === 'accept' ? 'accepted' : 'refused' });
      return outcome;
    }
    preCreateHookAnswers.inc({ outcome: options.failOpen ? 'failed_open' : 'unavailable' });
    options.log.warn(
      { owner: request.owner, reason: outcome.reason, status: result.status, failOpen: options.failOpen },
      options.failOpen ? 'pre-create hook could not be asked: accepting (PRE_CREATE_HOOK_FAIL_OPEN)' : 'pre-create hook could not be asked: refusing with 503',
    );
    if (options.failOpen) return { action: 'accept' };
    return {
      action: 'refuse',
      status: 503,
      code: 'PRE_CREATE_HOOK_UNAVAILABLE',
      message: 'the application could not be asked about this upload; retry shortly',
      retryAfter: UNAVAILABLE_RETRY_AFTER,
    };
  };
}

/** The hook PRE_CREATE_HOOK_URL names (signed with WEBHOOK_SECRET), or `acceptAll` without one. */
export function configuredPreCreateHook(config: Pick<Config, 'preCreateHook' | 'webhook'>, log: Pick<Logger, 'warn'>): PreCreateHook {
  const { url, timeoutMs, failOpen } = config.preCreateHook;
  if (!url) return acceptAll;
  return httpPreCreateHook({ url, timeoutMs, failOpen, secrets: config.webhook.secrets, allowPrivate: config.webhook.allowPrivate, log });
}
