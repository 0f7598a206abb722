// Webhook configuration and the sending seam: Standard Webhooks signatures, private addresses
// refused, redirects not followed, timeouts, answers truncated.
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { JOBS, jobKey } from '../../src/db/jobs.js';
import { generateSecret, isPrivateAddress, refuseUrl, RESPONSE_BODY_LIMIT, sendWebhook, signatureHeaders } from '../../src/webhooks/send.js';

const secret = `whsec_${randomBytes(32).toString('base64')}`;

describe('webhook configuration', () => {
  it('has defaults: no endpoint, 10s timeout, 13 attempts (about a day of backoff), private addresses refused', () => {
    expect(loadConfig({}).webhook).toEqual({
      url: undefined,
      secrets: [],
      events: null,
      timeoutMs: 10_000,
      maxAttempts: 13,
      allowPrivate: false,
    });
    // graphile-worker waits exp(min(attempts, 10)) seconds after each failed attempt.
    const waits = Array.from({ length: 12 }, (_, i) => Math.exp(Math.min(i + 1, 10)));
    const hours = waits.reduce((a, b) => a + b, 0) / 3600;
    expect(hours).toBeGreaterThan(18);
    expect(hours).toBeLessThan(30);
  });

  it('reads the endpoint, its events and limits', () => {
    const config = loadConfig({
      WEBHOOK_URL: 'https://app.example/hooks',
      WEBHOOK_SECRET: secret,
      WEBHOOK_EVENTS: 'file.ready, file.deleted,file.ready',
      WEBHOOK_TIMEOUT: '3s',
      WEBHOOK_MAX_ATTEMPTS: '5',
      WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    expect(config.webhook).toEqual({
      url: 'https://app.example/hooks',
      secrets: [secret],
      events: ['file.ready', 'file.deleted'],
      timeoutMs: 3000,
      maxAttempts: 5,
      allowPrivate: true,
    });
  });

  it('lists every webhook problem at once', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ WEBHOOK_URL: 'ftp://x', WEBHOOK_SECRET: 'hunter2', WEBHOOK_EVENTS: 'file.ready,file.eaten', WEBHOOK_MAX_ATTEMPTS: '0' });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const names = error!.problems.map((p) => p.split('=')[0]);
    expect(names).toEqual(expect.arrayContaining(['WEBHOOK_URL', 'WEBHOOK_SECRET', 'WEBHOOK_EVENTS', 'WEBHOOK_MAX_ATTEMPTS']));
    expect(() => loadConfig({ WEBHOOK_URL: 'https://app.example/hooks' })).toThrow(/WEBHOOK_SECRET is not set|WEBHOOK_SECRET is not/);
  });

  it('takes two secrets during a rotation (new first), never three', () => {
    const old = generateSecret();
    expect(loadConfig({ WEBHOOK_SECRET: `${secret} ${old}` }).webhook.secrets).toEqual([secret, old]);
    expect(loadConfig({ WEBHOOK_SECRET: ` ${secret},${old} ` }).webhook.secrets).toEqual([secret, old]);
    expect(() => loadConfig({ WEBHOOK_SECRET: `${secret} ${old} ${generateSecret()}` })).toThrow(/one or two Standard Webhooks secrets/);
    expect(() => loadConfig({ WEBHOOK_SECRET: `${secret} hunter2` })).toThrow(/WEBHOOK_SECRET/);
  });

  it('keys one delivery job per endpoint and upload (the trigger builds the same key in SQL)', () => {
    const payload = { endpointId: '09257417-5fe7-4886-9ced-8bedc8e41ad0', uploadId: 'ab'.repeat(16) };
    expect(JOBS.deliver_webhook.payload.parse(payload)).toEqual(payload);
    expect(jobKey('deliver_webhook', payload)).toBe(`webhook:${payload.endpointId}:${payload.uploadId}`);
  });
});

describe('private addresses', () => {
  it.each(['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1'])(
    '%s is private',
    (address) => expect(isPrivateAddress(address)).toBe(true),
  );
  it.each(['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('%s is public', (address) => expect(isPrivateAddress(address)).toBe(false));

  it('refuses private, loopback and non-http URLs unless allowed', async () => {
    expect(await refuseUrl('http://127.0.0.1:9/x', false)).toMatch(/private or loopback/);
    expect(await refuseUrl('http://localhost:9/x', false)).toMatch(/private or loopback/);
    expect(await refuseUrl('http://[::1]:9/x', false)).toMatch(/private or loopback/);
    expect(await refuseUrl('ftp://example.com/x', true)).toMatch(/http/);
    expect(await refuseUrl('http://127.0.0.1:9/x', true)).toBeNull();
    expect(await refuseUrl('http://8.8.8.8/x', false)).toBeNull();
  });
});

describe('sendWebhook', () => {
  let server: Server;
  let base = '';
  const seen: Array<{ url: string; headers: Record<string, string | string[] | undefined>; body: string }> = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
        if (req.url === '/redirect') return res.writeHead(307, { location: '/ok' }).end();
        if (req.url === '/big') return res.writeHead(503).end('y'.repeat(10_000));
        if (req.url === '/slow') return setTimeout(() => res.writeHead(200).end(), 2000);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    base = `http://localhost:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const send = (path: string, options: Partial<{ timeoutMs: number; allowPrivate: boolean }> = {}) =>
    sendWebhook({ url: `${base}${path}`, id: 'msg_1', body: '{"type":"t"}', secrets: [secret] }, { timeoutMs: 1000, allowPrivate: true, ...options });

  it('signs per Standard Webhooks (verifiable by the standardwebhooks package)', async () => {
    const result = await send('/ok');
    expect(result).toMatchObject({ ok: true, status: 204, error: null });
    const request = seen.at(-1)!;
    expect(request.body).toBe('{"type":"t"}');
    expect(request.headers['webhook-id']).toBe('msg_1');
    expect(request.headers['content-type']).toBe('application/json');
    expect(new Webhook(secret).verify(request.body, request.headers as Record<string, string>)).toEqual({ type: 't' });
  });

  it('signs with every active secret (rotation)', () => {
    const other = generateSecret();
    const headers = signatureHeaders('msg_2', 'body', [secret, other]);
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    for (const s of [secret, other]) expect(() => new Webhook(s).verify('body', headers, { jsonParse: false })).not.toThrow();
    expect(() => new Webhook(generateSecret()).verify('body', headers, { jsonParse: false })).toThrow();
  });

  it('does not follow redirects, truncates answers and times out', async () => {
    const count = seen.length;
    expect(await send('/redirect')).toMatchObject({ ok: false, status: 307 });
    expect(seen.length).toBe(count + 1);
    const big = await send('/big');
    expect(big).toMatchObject({ ok: false, status: 503 });
    expect(big.body).toHaveLength(RESPONSE_BODY_LIMIT);
    expect(big.truncated).toBe(true);
    expect((await send('/ok')).truncated).toBe(false);
    const slow = await send('/slow', { timeoutMs: 200 });
    expect(slow).toMatchObject({ ok: false, status: null, error: 'no answer within 200 ms' });
  });

  it('refuses loopback addresses unless allowed, by name and by literal', async () => {
    const count = seen.length;
    expect((await send('/ok', { allowPrivate: false })).error).toMatch(/private or loopback/);
    const literal = await sendWebhook(
      { url: base.replace('localhost', '127.0.0.1') + '/ok', id: 'm', body: '{}', secrets: [secret] },
      { timeoutMs: 1000, allowPrivate: false },
    );
    expect(literal.error).toMatch(/private or loopback/);
    expect(seen.length).toBe(count);
  });
});

describe('what a receiver verifies (the README snippet)', () => {
  const body = JSON.stringify({ type: 'file.ready', timestamp: new Date().toISOString(), data: { id: 'f1' } });

  it('accepts a fresh request signed with its secret', () => {
    expect(new Webhook(secret).verify(body, signatureHeaders('msg_1', body, [secret]))).toEqual(JSON.parse(body));
  });

  it('refuses a tampered body, another id, another secret and a replay older than 5 minutes', () => {
    const headers = signatureHeaders('msg_1', body, [secret]);
    const receiver = new Webhook(secret);
    expect(() => receiver.verify(body.replace('f1', 'f2'), headers)).toThrow();
    expect(() => receiver.verify(body, { ...headers, 'webhook-id': 'msg_2' })).toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
    const replayed = signatureHeaders('msg_1', body, [secret], new Date(Date.now() - 6 * 60_000));
    expect(() => receiver.verify(body, replayed)).toThrow(/timestamp/i);
    // Within the tolerance, an older request still verifies.
    expect(receiver.verify(body, signatureHeaders('msg_1', body, [secret], new Date(Date.now() - 4 * 60_000)))).toEqual(JSON.parse(body));
  });
});
