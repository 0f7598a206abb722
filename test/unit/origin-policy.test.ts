// The origin policy's rule (src/http/origin-policy.ts) and CORS_ORIGINS, without a server.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildOriginPolicy, decide, parseHost, type RequestFacts } from '../../src/http/origin-policy.js';

const none = buildOriginPolicy(loadConfig({ HOST: '127.0.0.1' }));
const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  method: 'GET',
  route: '/api/files',
  hostHeader: '127.0.0.1:1080',
  host: over.hostHeader ?? '127.0.0.1:1080',
  protocol: 'http',
  origin: undefined,
  ...over,
});

describe('parseHost', () => {
  it.each([
    ['localhost', 'localhost', null],
    ['LocalHost:1080', 'localhost', 1080],
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['[::1]:1080', '[::1]', 1080],
    ['[2001:DB8::1]', '[2001:db8::1]', null],
    ['files.example', 'files.example', null],
    ['my_host-1.example:65535', 'my_host-1.example', 65535],
  ])('accepts %j', (value, name, port) => {
    expect(parseHost(value)).toEqual({ name, port });
  });

  it.each(['', 'a"b<c>', 'a b', 'evil.example/x', 'u@evil.example', 'evil.example:', 'evil.example:65536', 'evil.example:1:2', '::1', '[::1', '[::1]x', '[fe80::1%25eth0]', '[v1.x]', '%6c', "o'neil", 'a,b', 'x'.repeat(300)])(
    'refuses %j',
    (value) => {
      expect(parseHost(value)).toBeNull();
    },
  );
});

describe('decide', () => {
  it('AUTH_MODE=none: loopback names with any port, nothing else (421)', () => {
    for (const host of ['127.0.0.1:1080', 'localhost', 'localhost:5173', '[::1]:1', '127.0.0.1']) {
      expect(decide(none, facts({ hostHeader: host })).action, host).toBe('continue');
    }
    for (const host of ['evil.example', 'evil.example:1080', '127.0.0.2', '10.0.0.5:1080', 'localhost.evil.example']) {
      const decision = decide(none, facts({ hostHeader: host }));
      expect(decision, host).toMatchObject({ action: 'refuse', refusal: { status: 421, code: 'HOST_NOT_ALLOWED' } });
    }
  });

  it('AUTH_MODE=none: probes answer any valid Host, and a missing one', () => {
    expect(decide(none, facts({ route: '/healthz', hostHeader: '10.0.0.5:1080' })).action).toBe('continue');
    expect(decide(none, facts({ route: '/metrics', hostHeader: undefined, host: '' })).action).toBe('continue');
    expect(decide(none, facts({ route: '/healthz', hostHeader: 'a"b' }))).toMatchObject({ refusal: { status: 400, code: 'INVALID_HOST' } });
  });

  it('checks the forwarded host (TRUST_PROXY) as well as Host', () => {
    expect(decide(none, facts({ hostHeader: '127.0.0.1:1080', host: 'evil.example' }))).toMatchObject({ refusal: { status: 421 } });
    expect(decide(none, facts({ hostHeader: '127.0.0.1:1080', host: 'a"b' }))).toMatchObject({ refusal: { status: 400, code: 'INVALID_HOST' } });
  });

  it('PUBLIC_URL and a specific HOST add their names; a wildcard HOST adds none', () => {
    const policy = buildOriginPolicy(loadConfig({ HOST: '192.168.1.5', AUTH_ALLOW_NONE_ON_PUBLIC_HOST: 'true', PUBLIC_URL: 'https://files.example/base' }));
    for (const host of ['files.example', 'files.example:443', '192.168.1.5:1080']) expect(decide(policy, facts({ hostHeader: host })).action, host).toBe('continue');
    const wildcard = buildOriginPolicy(loadConfig({ HOST: '0.0.0.0', AUTH_ALLOW_NONE_ON_PUBLIC_HOST: 'true' }));
    expect(decide(wildcard, facts({ hostHeader: '0.0.0.0:1080' })).action).toBe('refuse');
    expect(decide(wildcard, facts({ hostHeader: '192.168.1.5:1080' })).action).toBe('refuse');
  });

  it('AUTH_MODE=none: only the own origin reads; a foreign one may not change anything (403)', () => {
    expect(decide(none, facts({ origin: 'http://127.0.0.1:1080' }))).toEqual({ action: 'continue', allowOrigin: 'http://127.0.0.1:1080' });
    expect(decide(none, facts({ hostHeader: 'localhost:1080', origin: 'http://localhost:1080', method: 'POST' }))).toEqual({ action: 'continue', allowOrigin: 'http://localhost:1080' });
    expect(decide(none, facts())).toEqual({ action: 'continue', allowOrigin: null });
    for (const origin of ['https://evil.example', 'https://127.0.0.1:1080', 'http://127.0.0.1:1081', 'null', 'HTTP://127.0.0.1:1080', 'http://127.0.0.1:1080/']) {
      expect(decide(none, facts({ origin })), origin).toEqual({ action: 'continue', allowOrigin: null });
      for (const method of ['POST', 'PATCH', 'DELETE', 'PUT']) {
        expect(decide(none, facts({ origin, method })), `${method} ${origin}`).toMatchObject({ refusal: { status: 403, code: 'ORIGIN_NOT_ALLOWED' } });
      }
      expect(decide(none, facts({ origin, method: 'OPTIONS' })).action).toBe('continue');
    }
  });

  it('CORS_ORIGINS adds origins in every mode; * opens to all', () => {
    const listed = buildOriginPolicy(loadConfig({ CORS_ORIGINS: 'https://app.example, http://localhost:5173/' }));
    expect(decide(listed, facts({ origin: 'https://app.example', method: 'POST' }))).toEqual({ action: 'continue', allowOrigin: 'https://app.example' });
    expect(decide(listed, facts({ origin: 'http://localhost:5173' }))).toEqual({ action: 'continue', allowOrigin: 'http://localhost:5173' });
    expect(decide(listed, facts({ origin: 'https://evil.example' }))).toEqual({ action: 'continue', allowOrigin: null });
    const all = buildOriginPolicy(loadConfig({ CORS_ORIGINS: '*' }));
    expect(decide(all, facts({ origin: 'https://evil.example', method: 'POST' }))).toEqual({ action: 'continue', allowOrigin: 'https://evil.example' });
    expect(decide(all, facts({ origin: 'null', method: 'POST' }))).toEqual({ action: 'continue', allowOrigin: '*' });
  });

  it('AUTH_MODE=jwt: any valid Host, any origin reads, nothing refused for its origin', () => {
    const jwt = buildOriginPolicy(loadConfig({ AUTH_MODE: 'jwt', AUTH_JWT_SECRET: 'x'.repeat(32) }));
    expect(decide(jwt, facts({ hostHeader: 'uploads.example:8080' })).action).toBe('continue');
    expect(decide(jwt, facts({ origin: 'https://evil.example', method: 'PATCH' }))).toEqual({ action: 'continue', allowOrigin: 'https://evil.example' });
    expect(decide(jwt, facts())).toEqual({ action: 'continue', allowOrigin: '*' });
    expect(decide(jwt, facts({ hostHeader: 'a"b<c>' }))).toMatchObject({ refusal: { status: 400, code: 'INVALID_HOST' } });
    const narrowed = buildOriginPolicy(loadConfig({ AUTH_MODE: 'jwt', AUTH_JWT_SECRET: 'x'.repeat(32), CORS_ORIGINS: 'https://app.example' }));
    expect(decide(narrowed, facts({ origin: 'https://evil.example', method: 'POST' }))).toEqual({ action: 'continue', allowOrigin: null });
  });
});

describe('CORS_ORIGINS', () => {
  it('normalises a list of origins', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://App.Example, http://localhost:5173/,https://app.example' }).corsOrigins).toEqual(['https://app.example', 'http://localhost:5173']);
    expect(loadConfig({}).corsOrigins).toBeNull();
    expect(loadConfig({ CORS_ORIGINS: ' * ' }).corsOrigins).toEqual(['*']);
  });

  it.each(['app.example', 'ftp://app.example', 'https://app.example/path', 'https://app.example?x', 'https://user@app.example', 'https://*.example', '*, https://app.example', 'https://app.example#x'])(
    'refuses %j, naming the variable',
    (value) => {
      expect(() => loadConfig({ CORS_ORIGINS: value })).toThrow(/CORS_ORIGINS=/);
    },
  );
});
