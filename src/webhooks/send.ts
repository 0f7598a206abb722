// Sending one signed webhook request (Standard Webhooks: webhook-id, webhook-timestamp,
// webhook-signature `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, signed by the
// `standardwebhooks` package). Redirects are never followed (node:http does not follow them) and
// private or loopback addresses are refused unless allowed, checked on the address actually
// connected to (a name that resolves to 127.0.0.1 is refused too, also on a later DNS answer).
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** At most this much of a receiver's answer is kept. */
export const RESPONSE_BODY_LIMIT = 1024;

const blocked = new net.BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(prefix, bits, 'ipv4');
for (const [prefix, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  blocked.addSubnet(prefix, bits, 'ipv6');
}

/** Loopback, private, link-local, multicast or unspecified (IPv4-mapped IPv6 as its IPv4). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  const family = net.isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) return blocked.check(address, 'ipv6');
  return true;
}

export class WebhookAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookAddressError';
  }
}

/** Why this URL may not receive webhooks, or null. Resolves the name (for the admin API's check). */
export async function refuseUrl(url: string, allowPrivate: boolean): Promise<string | null> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not an absolute URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'only http and https URLs can receive webhooks';
  if (parsed.username || parsed.password) return 'credentials in the URL are not supported';
  if (allowPrivate) return null;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const addresses = net.isIP(host) ? [host] : await dns.promises.lookup(host, { all: true }).then((list) => list.map((a) => a.address), () => []);
  if (addresses.length === 0) return `${host} does not resolve`;
  const bad = addresses.find(isPrivateAddress);
  return bad ? `${host} is a private or loopback address (${bad}); set WEBHOOK_ALLOW_PRIVATE=true to allow it` : null;
}

const guardedLookup = ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) return callback(new WebhookAddressError(`${hostname} resolves to a private or loopback address (${bad.address})`));
    if (options.all) return callback(null, addresses);
    return callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}) as unknown as net.LookupFunction;

/** A new Standard Webhooks secret: `whsec_` + base64 of 24 random bytes. */
export function generateSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export interface SignedRequest {
  url: string;
  /** The event id: the `webhook-id`, the same on every attempt. */
  id: string;
  body: string;
  secrets: string[];
}

/** The Standard Webhooks headers for `body`, one `v1,` signature per secret (rotation). */
export function signatureHeaders(id: string, body: string, secrets: string[], at = new Date()): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(id, at, body)).join(' '),
  };
}

export interface SendResult {
  ok: boolean;
  status: number | null;
  /** The answer's first `bodyLimit` (default RESPONSE_BODY_LIMIT) bytes. */
  body: string | null;
  /** The answer was longer than what `body` kept. */
  truncated: boolean;
  error: string | null;
  durationMs: number;
}

export async function sendWebhook(
  request: SignedRequest,
  options: { timeoutMs: number; allowPrivate: boolean; bodyLimit?: number },
): Promise<SendResult> {
  const limit = options.bodyLimit ?? RESPONSE_BODY_LIMIT;
  const started = Date.now();
  const done = (result: Omit<SendResult, 'durationMs' | 'truncated'> & { truncated?: boolean }): SendResult => ({
    truncated: false,
    ...result,
    durationMs: Date.now() - started,
  });
  const url = new URL(request.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return done({ ok: false, status: null, body: null, error: 'not an http(s) URL' });
  if (!options.allowPrivate && net.isIP(host) && isPrivateAddress(host)) {
    return done({ ok: false, status: null, body: null, error: `${host} is a private or loopback address (WEBHOOK_ALLOW_PRIVATE is off)` });
  }
  const body = Buffer.from(request.body);
  const headers = {
    'content-type': 'application/json',
    'content-length': String(body.length),
    'user-agent': 'tusvault-webhooks/1',
    ...signatureHeaders(request.id, request.body, request.secrets),
  };
  return new Promise<SendResult>((resolve) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(
      url,
      {
        method: 'POST',
        headers,
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(options.allowPrivate ? {} : { lookup: guardedLookup }),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        let truncated = false;
        res.on('data', (chunk: Buffer) => {
          if (kept + chunk.length > limit) truncated = true;
          if (kept < limit) {
            chunks.push(chunk.subarray(0, limit - kept));
            kept += Math.min(chunk.length, limit - kept);
          }
        });
        const finish = () => {
          const status = res.statusCode ?? null;
          const ok = status !== null && status >= 200 && status < 300;
          const body = Buffer.concat(chunks).toString('utf8');
          resolve(done({ ok, status, body, truncated, error: ok ? null : `the receiver answered ${status}` }));
        };
        res.once('end', finish);
        res.once('error', finish);
        res.once('aborted', finish);
      },
    );
    req.once('error', (error: Error) => {
      const message = error.name === 'AbortError' || error.name === 'TimeoutError' ? `no answer within ${options.timeoutMs} ms` : error.message;
      resolve(done({ ok: false, status: null, body: null, error: message }));
    });
    req.end(body);
  });
}
