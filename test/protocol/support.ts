// A tiny raw tus client for protocol tests: every header is written by hand, as the tests read
// the specification.
import { afterAll, beforeAll, expect } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverEnv, startServer, type StorageKind, type TestServer } from '../support/server.js';

export const TUS = { 'Tus-Resumable': '1.0.0' };
export const OCTET = { 'Content-Type': 'application/offset+octet-stream' };

export function meta(pairs: Record<string, string>): string {
  return Object.entries(pairs)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

export interface Tus {
  server: TestServer;
  db: TestDatabase;
  endpoint: string;
  request(method: string, url: string, headers?: Record<string, string>, body?: string | Uint8Array): Promise<Response>;
  create(length: number | null, extra?: Record<string, string>, body?: string | Uint8Array): Promise<Response>;
  patch(url: string, offset: number, body: string | Uint8Array, extra?: Record<string, string>): Promise<Response>;
  head(url: string, extra?: Record<string, string>): Promise<Response>;
}

/** Starts a server for the test file (disk storage unless said otherwise) and returns a client. */
export function useTusServer(storage: StorageKind = 'file', extra: Record<string, string> = {}): Tus {
  const tus = {} as Tus;
  beforeAll(async () => {
    tus.db = await createTestDatabase();
    tus.server = await startServer(await serverEnv({ databaseUrl: tus.db.url, storage, extra }));
    tus.endpoint = `${tus.server.url}/files`;
    tus.request = (method, url, headers = {}, body) =>
      fetch(url, { method, headers, ...(body !== undefined ? { body: typeof body === "string" ? body : Buffer.from(body) } : {}) });
    tus.create = (length, more = {}, body) =>
      tus.request(
        'POST',
        tus.endpoint,
        {
          ...TUS,
          ...(length === null ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }),
          'Upload-Metadata': meta({ filename: 'spec.bin' }),
          ...more,
        },
        body,
      );
    tus.patch = (url, offset, body, more = {}) => tus.request('PATCH', url, { ...TUS, ...OCTET, 'Upload-Offset': String(offset), ...more }, body);
    tus.head = (url, more = {}) => tus.request('HEAD', url, { ...TUS, ...more });
  });
  afterAll(async () => {
    await tus.server?.stop();
    await tus.db?.drop();
  });
  return tus;
}

export async function errorCode(response: Response): Promise<string> {
  expect(response.headers.get('content-type')).toContain('application/json');
  return ((await response.json()) as { error: { code: string } }).error.code;
}

