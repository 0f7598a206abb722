// The pure rules of direct-to-bucket uploads: the bucket CORS check made at start, the origin the
// page's CSP allows, the part-list comparison made before completing, and what Uppy's metadata
// becomes.
import { describe, expect, it } from 'vitest';
import { bucketOrigin, corsProblem } from '../../src/direct/bucket-cors.js';
import { directKey, samePartList } from '../../src/direct/direct-uploads.js';
import { metadataOfQuery, plainMetadata } from '../../src/http/routes/s3-direct.js';

const ORIGIN = 'https://uploads.example.com';
const RULE = { AllowedOrigins: [ORIGIN], AllowedMethods: ['GET', 'PUT', 'POST'], ExposeHeaders: ['ETag'] };

describe('corsProblem', () => {
  it('accepts the README rule, a wildcard origin and *', () => {
    expect(corsProblem([RULE], ORIGIN)).toBeNull();
    expect(corsProblem([{ ...RULE, AllowedOrigins: ['https://*.example.com'] }], ORIGIN)).toBeNull();
    expect(corsProblem([{ ...RULE, AllowedOrigins: ['*'], ExposeHeaders: ['etag'] }], ORIGIN)).toBeNull();
  });
  it('says what is missing', () => {
    expect(corsProblem(null, ORIGIN)).toMatch(/no CORS configuration/);
    expect(corsProblem([{ ...RULE, AllowedOrigins: ['https://other.example'] }], ORIGIN)).toMatch(/PUT and POST/);
    expect(corsProblem([{ ...RULE, AllowedMethods: ['GET', 'PUT'] }], ORIGIN)).toMatch(/POST from/);
    expect(corsProblem([{ ...RULE, ExposeHeaders: [] }], ORIGIN)).toMatch(/ETag/);
    expect(corsProblem([{ ...RULE, AllowedOrigins: ['https://*.example.com'] }], 'https://example.com.evil')).toMatch(/PUT and POST/);
  });
});

describe('bucketOrigin', () => {
  it('is the endpoint (path style), the bucket under it, or AWS', () => {
    expect(bucketOrigin({ bucket: 'b', endpoint: 'http://127.0.0.1:9000/', region: 'us-east-1', forcePathStyle: true })).toBe('http://127.0.0.1:9000');
    expect(bucketOrigin({ bucket: 'b', endpoint: 'https://acct.r2.cloudflarestorage.com', region: 'auto', forcePathStyle: false })).toBe(
      'https://b.acct.r2.cloudflarestorage.com',
    );
    expect(bucketOrigin({ bucket: 'b', region: 'eu-west-1', forcePathStyle: false })).toBe('https://b.s3.eu-west-1.amazonaws.com');
  });
});

describe('samePartList', () => {
  const stored = [
    { PartNumber: 1, ETag: '"a"', Size: 5 },
    { PartNumber: 2, ETag: '"b"', Size: 1 },
  ];
  it('holds for exactly the stored parts, in any order, quoted or not', () => {
    expect(samePartList([{ PartNumber: 2, ETag: 'b' }, { PartNumber: 1, ETag: '"a"' }], stored)).toBe(true);
  });
  it('fails for a missing, extra or changed part', () => {
    expect(samePartList([{ PartNumber: 1, ETag: 'a' }], stored)).toBe(false);
    expect(samePartList([{ PartNumber: 1, ETag: 'a' }, { PartNumber: 2, ETag: 'b' }, { PartNumber: 3, ETag: 'c' }], stored)).toBe(false);
    expect(samePartList([{ PartNumber: 1, ETag: 'a' }, { PartNumber: 2, ETag: 'x' }], stored)).toBe(false);
    expect(samePartList([{ PartNumber: 1, ETag: 'a' }, { PartNumber: 1, ETag: 'a' }], stored)).toBe(false);
  });
});

describe('metadata and keys', () => {
  it('keeps plain values of Uppy metadata, bounded', () => {
    expect(plainMetadata({ name: 'a.fseq', size: 3, ok: true, nested: { x: 1 }, none: null })).toEqual({ name: 'a.fseq', size: '3', ok: 'true' });
    expect(Object.keys(plainMetadata(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v'])))).length).toBe(32);
    expect(metadataOfQuery({ filename: 'x', 'metadata[name]': 'a', 'metadata[tag]': ['b', 'c'] })).toEqual({ name: 'a', tag: 'b' });
  });
  it('puts an owner’s uploads under a digest of the owner, never the owner id itself', () => {
    const key = directKey('alice@example.com', 'f'.repeat(32));
    expect(key).toMatch(/^direct\/[0-9a-f]{16}\/f{32}$/);
    expect(key).not.toContain('alice');
    expect(directKey('bob', 'f'.repeat(32))).not.toBe(key);
  });
});
