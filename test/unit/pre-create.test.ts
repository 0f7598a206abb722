// The pre-create hook's configuration and how the application's answers are read (pure); the HTTP
// round trips are in test/integration/pre-create-hook.test.ts.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { AppError } from '../../src/errors.js';
import {
  acceptAll,
  acceptedMetadata,
  admitUpload,
  APP_METADATA_LIMIT,
  configuredPreCreateHook,
  metadataForHook,
  outcomeOf,
  refusalMessage,
  REFUSAL_MESSAGE_LIMIT,
  type PreCreateRequest,
} from '../../src/webhooks/pre-create.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const request: PreCreateRequest = { owner: 'o', filename: 'a.bin', size: 1, mimeType: null, kind: 'other', metadata: {}, protocol: 'tus' };
const answer = (status: number | null, body: string | null = null, extra: { truncated?: boolean; error?: string } = {}) => ({
  status,
  body,
  truncated: extra.truncated ?? false,
  error: extra.error ?? (status !== null && status >= 200 && status < 300 ? null : `the receiver answered ${status}`),
});

describe('pre-create hook configuration', () => {
  it('is off by default: 5s timeout, fail closed, every creation accepted', () => {
    const config = loadConfig({});
    expect(config.preCreateHook).toEqual({ url: undefined, timeoutMs: 5000, failOpen: false });
    expect(configuredPreCreateHook(config, console)).toBe(acceptAll);
  });

  it('reads the URL, timeout and fail-open, and needs WEBHOOK_SECRET to sign with', () => {
    const config = loadConfig({ PRE_CREATE_HOOK_URL: 'https://app.example/pre', PRE_CREATE_HOOK_TIMEOUT: '2s', PRE_CREATE_HOOK_FAIL_OPEN: 'true', WEBHOOK_SECRET: secret });
    expect(config.preCreateHook).toEqual({ url: 'https://app.example/pre', timeoutMs: 2000, failOpen: true });
    expect(configuredPreCreateHook(config, console)).not.toBe(acceptAll);

    let error: ConfigError | undefined;
    try {
      loadConfig({ PRE_CREATE_HOOK_URL: 'ftp://app.example', PRE_CREATE_HOOK_TIMEOUT: 'soon', PRE_CREATE_HOOK_FAIL_OPEN: 'maybe' });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const names = error!.problems.map((p) => p.split('=')[0]);
    expect(names).toEqual(expect.arrayContaining(['PRE_CREATE_HOOK_URL', 'PRE_CREATE_HOOK_TIMEOUT', 'PRE_CREATE_HOOK_FAIL_OPEN']));
    expect(() => loadConfig({ PRE_CREATE_HOOK_URL: 'https://app.example/pre' })).toThrow(/PRE_CREATE_HOOK_URL is set but WEBHOOK_SECRET is not/);
  });
});

describe("the application's answer", () => {
  it('2xx accepts; a JSON object\'s "metadata" object is attached, anything else in the body is ignored', () => {
    expect(outcomeOf(answer(200, '{"metadata":{"productId":"p1"}}'))).toEqual({ action: 'accept', metadata: { productId: 'p1' } });
    for (const body of [null, '', 'ok', '[1]', '{"metadata":null}', '{"other":1}']) expect(outcomeOf(answer(204, body))).toEqual({ action: 'accept' });
  });

  it('2xx with unusable metadata (not an object, too large) counts as not asked', () => {
    expect(acceptedMetadata('{"metadata":[1]}', false)).toEqual({ invalid: '"metadata" is not a JSON object' });
    expect(acceptedMetadata('{"metadata":"x"}', false)).toHaveProperty('invalid');
    expect(acceptedMetadata('{"metadata":{', true)).toEqual({ invalid: `the answer is larger than ${APP_METADATA_LIMIT} bytes` });
    expect(outcomeOf(answer(200, '{"metadata":7}'))).toMatchObject({ action: 'unavailable' });
  });

  it('4xx refuses with the JSON message, cleaned and cut; never the raw body', () => {
    expect(outcomeOf(answer(409, '{"message":" Sold\\r\\n out "}'))).toEqual({ action: 'refuse', status: 403, code: 'UPLOAD_REFUSED', message: 'Sold out' });
    expect(refusalMessage('<html><b>no</b></html>')).toBe('the application refused this upload');
    expect(refusalMessage('{"message":""}')).toBe('the application refused this upload');
    expect(refusalMessage('{"message":42}')).toBe('the application refused this upload');
    expect(refusalMessage('{"message":"a\\u202eb\\u0000c"}')).toBe('a b c');
    const long = refusalMessage(JSON.stringify({ message: '😀'.repeat(1000) }));
    expect(Array.from(long)).toHaveLength(REFUSAL_MESSAGE_LIMIT);
    expect(long.endsWith('…')).toBe(true);
  });

  it('5xx, redirects, timeouts and refused connections mean the application was not asked', () => {
    expect(outcomeOf(answer(500))).toEqual({ action: 'unavailable', reason: 'the receiver answered 500' });
    expect(outcomeOf(answer(302))).toMatchObject({ action: 'unavailable' });
    expect(outcomeOf(answer(null, null, { error: 'no answer within 5000 ms' }))).toEqual({ action: 'unavailable', reason: 'no answer within 5000 ms' });
  });
});

describe('admitUpload', () => {
  it('returns the metadata of an acceptance and throws the refusal as the client\'s error', async () => {
    expect(await admitUpload(acceptAll, request)).toBeNull();
    expect(await admitUpload(async () => ({ action: 'accept', metadata: { a: 1 } }), request)).toEqual({ a: 1 });
    const refused = await admitUpload(async () => ({ action: 'refuse', status: 503, code: 'X', message: 'later', retryAfter: 5 }), request).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ status: 503, code: 'X', message: 'later', headers: { 'Retry-After': '5' } });
  });

  it('tells the application about flags (metadata keys without a value) as empty strings', () => {
    expect(metadataForHook({ filename: 'a.bin', confidential: null })).toEqual({ filename: 'a.bin', confidential: '' });
  });
});
