// OWNER_MAX_CONCURRENT_UPLOADS and UPLOAD_MIN_RATE: their defaults and parsing, and the per-owner
// slots of src/tus/owner-limits.ts.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { toHttpError } from '../../src/http/errors.js';
import { OwnerUploadLimits } from '../../src/tus/owner-limits.js';

const jwt = { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: 'test-secret-that-is-at-least-32-characters-long' };

describe('upload limit settings', () => {
  it('defaults: 16 concurrent uploads per owner with JWT, unbounded with AUTH_MODE=none; 1 KiB per 10 s', () => {
    expect(loadConfig(jwt).ownerMaxConcurrentUploads).toBe(16);
    expect(loadConfig({}).ownerMaxConcurrentUploads).toBe(0);
    expect(loadConfig({}).uploadMinRate).toEqual({ bytes: 1024, windowMs: 10_000 });
  });

  it('parses explicit values', () => {
    expect(loadConfig({ ...jwt, OWNER_MAX_CONCURRENT_UPLOADS: '3' }).ownerMaxConcurrentUploads).toBe(3);
    expect(loadConfig({ ...jwt, OWNER_MAX_CONCURRENT_UPLOADS: '0' }).ownerMaxConcurrentUploads).toBe(0);
    expect(loadConfig({ OWNER_MAX_CONCURRENT_UPLOADS: '8' }).ownerMaxConcurrentUploads).toBe(8);
    expect(loadConfig({ UPLOAD_MIN_RATE: '4KiB/30s' }).uploadMinRate).toEqual({ bytes: 4096, windowMs: 30_000 });
    expect(loadConfig({ UPLOAD_MIN_RATE: 'off' }).uploadMinRate).toBeNull();
    expect(loadConfig({ UPLOAD_MIN_RATE: '0' }).uploadMinRate).toBeNull();
  });

  it.each([
    ['OWNER_MAX_CONCURRENT_UPLOADS', '-1'],
    ['OWNER_MAX_CONCURRENT_UPLOADS', 'many'],
    ['UPLOAD_MIN_RATE', '1KiB'],
    ['UPLOAD_MIN_RATE', '1KiB/soon'],
    ['UPLOAD_MIN_RATE', 'fast/10s'],
    ['UPLOAD_MIN_RATE', '1KiB/10s/2'],
  ])('rejects %s=%j', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  });
});

describe('OwnerUploadLimits', () => {
  it('counts per owner, refuses beyond the cap with 429 + Retry-After, releases once', () => {
    const limits = new OwnerUploadLimits(2);
    const a1 = limits.acquire('alice');
    const a2 = limits.acquire('alice');
    let refused: unknown;
    try {
      limits.acquire('alice');
    } catch (error) {
      refused = error;
    }
    const mapped = toHttpError(refused);
    expect(mapped.status).toBe(429);
    expect(mapped.body.error.code).toBe('TOO_MANY_UPLOADS');
    expect(mapped.headers['Retry-After']).toMatch(/^\d+$/);
    // Another owner is not affected.
    const b1 = limits.acquire('bob');
    a1();
    a1();
    expect(limits.count('alice')).toBe(1);
    limits.acquire('alice')();
    a2();
    b1();
    expect(limits.count('alice')).toBe(0);
    expect(limits.count('bob')).toBe(0);
  });

  it('0 means no bound', () => {
    const limits = new OwnerUploadLimits(0);
    for (let i = 0; i < 100; i++) limits.acquire('local');
    expect(limits.count('local')).toBe(100);
  });
});
