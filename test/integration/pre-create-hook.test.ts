// The pre-create hook (PRE_CREATE_HOOK_URL) over real HTTP against real Postgres: a receiver in
// the test plays the application, verifying each signed request with `standardwebhooks`. It
// accepts (attaching metadata, shown in the record and the webhook events), refuses with a message
// (tus-js-client and the IETF draft see 403 UPLOAD_REFUSED), or cannot be asked (timeout, 5xx, an
// unusable answer, down: 503 with Retry-After, or an acceptance with PRE_CREATE_HOOK_FAIL_OPEN).
// A refused creation leaves no record, no reservation and no event.
import { randomBytes } from 'node:crypto';
import type { DetailedError } from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFile, waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { metric, scrape } from '../support/metrics.js';
import { freePort, waitFor } from '../support/ports.js';
import { serverEnv, startServer, type TestServer } from '../support/server.js';
import { idOf, upload } from '../support/tus.js';
import { startReceiver, verify, type Answer, type Receiver, type Received } from '../support/webhook-receiver.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const TUS = { 'Tus-Resumable': '1.0.0' };
const metadata = (name: string) => `filename ${Buffer.from(name).toString('base64')}`;
const json = (status: number, body: unknown): Answer => ({ status, contentType: 'application/json', body: JSON.stringify(body) });

/** The application: its answer depends on the name of the file it is asked about. */
function application(request: Omit<Received, 'answered'>): Answer {
  const name = String(request.body.filename);
  if (name.startsWith('accept')) return json(200, { metadata: { productId: 'p-42', tags: ['a', 'b'] } });
  if (name.startsWith('refuse')) return json(422, { message: `  Product p-9 is\nsold out.\u202e  ${'!'.repeat(400)}` });
  if (name.startsWith('html')) return { status: 403, contentType: 'text/html', body: '<html><body><h1>Forbidden</h1></body></html>' };
  if (name.startsWith('slow')) return { status: 200, delayMs: 3000 };
  if (name.startsWith('broken')) return 500;
  if (name.startsWith('bad-metadata')) return json(200, { metadata: ['not', 'an', 'object'] });
  return 200;
}

/** tus-js-client's error for an upload that is not created (no retries). */
async function refusal(server: TestServer, headers: Record<string, string>, filename: string): Promise<{ status: number; body: { error: Record<string, unknown> } }> {
  const error = (await upload(randomBytes(100), { endpoint: `${server.url}/files`, filename, headers, retryDelays: [] }).then(
    () => {
      throw new Error(`${filename} was created`);
    },
    (e: DetailedError) => e,
  )) as DetailedError;
  const response = error.originalResponse!;
  return { status: response.getStatus(), body: JSON.parse(response.getBody()) as { error: Record<string, unknown> } };
}

const create = (server: TestServer, headers: Record<string, string>, filename: string, extra: Record<string, string> = {}) =>
  fetch(`${server.url}/files`, { method: 'POST', headers: { ...headers, ...TUS, 'Upload-Length': '10', 'Upload-Metadata': metadata(filename), ...extra } });

describe('the pre-create hook', () => {
  let db: TestDatabase;
  let server: TestServer;
  let hook: Receiver;
  let events: Receiver;
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  /** Nothing of bob's exists: no record, no reservation, no event (every creation of his is refused). */
  async function nothingLeftForBob() {
    expect(await db.sql`select id from uploads where owner_id = 'bob'`).toHaveLength(0);
    expect(await db.sql`select id from webhook_events where owner_id = 'bob'`).toHaveLength(0);
    const quota = (await (await fetch(`${server.url}/api/me/quota`, { headers: bob })).json()) as Record<string, number>;
    expect(quota).toMatchObject({ reservedBytes: 0, reservedFiles: 0, fileCount: 0 });
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    hook = await startReceiver(application);
    events = await startReceiver();
    const extra = jwtEnv({
      PRE_CREATE_HOOK_URL: `${hook.url}/pre-create`,
      PRE_CREATE_HOOK_TIMEOUT: '1s',
      WEBHOOK_URL: `${events.url}/events`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra }));
    alice = await bearer('alice');
    bob = await bearer('bob');
  });
  afterAll(async () => {
    await server?.stop();
    await hook?.close();
    await events?.close();
    await db?.drop();
  });

  it('asks with a signed request; an acceptance attaches its metadata to the record and the events', async () => {
    const data = randomBytes(1500);
    const id = await upload(data, { endpoint: `${server.url}/files`, filename: 'accept.bin', headers: alice });
    const asked = hook.received.filter((r) => r.body.filename === 'accept.bin');
    expect(asked).toHaveLength(1);
    expect(asked[0]!.path).toBe('/pre-create');
    expect(verify(asked[0]!, SECRET)).toEqual({
      owner: 'alice',
      filename: 'accept.bin',
      size: 1500,
      mimeType: null,
      kind: 'other',
      metadata: { filename: 'accept.bin' },
      protocol: 'tus',
    });

    const appMetadata = { productId: 'p-42', tags: ['a', 'b'] };
    const record = await waitForFinal(server.url, id, { headers: alice });
    expect(record).toMatchObject({ status: 'ready', appMetadata });
    const ready = await waitFor(() => events.about(id).find((r) => r.body.type === 'file.ready'), { what: 'file.ready' });
    expect(verify(ready, SECRET)).toEqual(ready.body);
    expect(ready.body.data).toEqual(await getFile(server.url, id, alice));
    expect(events.about(id).find((r) => r.body.type === 'upload.created')!.body.data.appMetadata).toEqual(appMetadata);

    // The field is in the OpenAPI document's file record.
    const document = (await (await fetch(`${server.url}/docs/json`)).json()) as { components: { schemas: Record<string, { properties: object }> } };
    expect(document.components.schemas.FileRecord!.properties).toHaveProperty('appMetadata');
  });

  it('refuses with the application\'s message (tus-js-client and the IETF draft), leaving nothing behind', async () => {
    const refused = await refusal(server, bob, 'refuse.bin');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('UPLOAD_REFUSED');
    // One line, no control or bidirectional-override characters, cut to 300 characters.
    const message = String(refused.body.error.message);
    expect(message.startsWith('Product p-9 is sold out. !!!')).toBe(true);
    expect(Array.from(message)).toHaveLength(300);
    expect(message.endsWith('…')).toBe(true);

    // An HTML answer is never shown.
    const html = await refusal(server, bob, 'html.bin');
    expect(html).toMatchObject({ status: 403, body: { error: { code: 'UPLOAD_REFUSED', message: 'the application refused this upload' } } });

    const ietf = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...bob, 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Content-Disposition': 'attachment; filename="refuse-ietf.bin"' },
      body: Buffer.from('0123456789'),
    });
    expect(ietf.status).toBe(403);
    expect(((await ietf.json()) as { error: { code: string } }).error.code).toBe('UPLOAD_REFUSED');
    expect(hook.received.find((r) => r.body.filename === 'refuse-ietf.bin')!.body).toMatchObject({ owner: 'bob', size: 10, protocol: 'ietf' });

    await nothingLeftForBob();
  });

  it('answers 503 with Retry-After when the application cannot be asked: timeout, 5xx, unusable metadata', async () => {
    for (const name of ['slow.bin', 'broken.bin', 'bad-metadata.bin']) {
      const response = await create(server, bob, name);
      expect(response.status, name).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('PRE_CREATE_HOOK_UNAVAILABLE');
    }
    await nothingLeftForBob();
  });

  it('asks about a concatenation\'s final (with its name and whole size), not its partials', async () => {
    const partial = async (bytes: Buffer) => {
      const created = await create(server, alice, 'part', { 'Upload-Length': String(bytes.length), 'Upload-Concat': 'partial' });
      expect(created.status).toBe(201);
      const url = created.headers.get('location')!;
      const patched = await fetch(url, {
        method: 'PATCH',
        headers: { ...alice, ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
        body: new Uint8Array(bytes),
      });
      expect(patched.status).toBe(204);
      return url;
    };
    const urls = [await partial(randomBytes(300)), await partial(randomBytes(200))];
    expect(hook.received.filter((r) => r.body.filename === 'part')).toHaveLength(0);
    const final = (name: string) =>
      fetch(`${server.url}/files`, { method: 'POST', headers: { ...alice, ...TUS, 'Upload-Concat': `final;${urls.join(' ')}`, 'Upload-Metadata': metadata(name) } });

    const refused = await final('refuse-joined.bin');
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('UPLOAD_REFUSED');

    const accepted = await final('accept-joined.bin');
    expect(accepted.status).toBe(201);
    expect(hook.received.find((r) => r.body.filename === 'accept-joined.bin')!.body).toMatchObject({ owner: 'alice', size: 500, protocol: 'tus' });
    const record = await waitForFinal(server.url, idOf(accepted.headers.get('location')!), { headers: alice });
    expect(record).toMatchObject({ status: 'ready', size: 500, appMetadata: { productId: 'p-42' } });
    expect(await db.sql`select id from uploads where filename = 'refuse-joined.bin'`).toHaveLength(0);
  });

  it('answers 503 while the application is down', async () => {
    await hook.close();
    const response = await create(server, bob, 'accept-later.bin');
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    await nothingLeftForBob();

    // The answers are counted (refused: refuse, html, refuse-ietf, refuse-joined; not asked: slow, broken, bad-metadata, down).
    const text = await scrape(server.url);
    expect(metric(text, 'tusvault_pre_create_hook_answers_total{outcome="refused"}')).toBe(4);
    expect(metric(text, 'tusvault_pre_create_hook_answers_total{outcome="unavailable"}')).toBe(4);
    expect(metric(text, 'tusvault_pre_create_hook_answers_total{outcome="accepted"}')).toBeGreaterThanOrEqual(2);
  });
});

describe('PRE_CREATE_HOOK_FAIL_OPEN', () => {
  it('accepts (without metadata) when the application times out or is down', async () => {
    const db = await createTestDatabase();
    const hook = await startReceiver(application);
    const down = await freePort();
    const env = (url: string) =>
      serverEnv({
        databaseUrl: db.url,
        storage: 'file',
        extra: jwtEnv({ PRE_CREATE_HOOK_URL: url, PRE_CREATE_HOOK_TIMEOUT: '1s', PRE_CREATE_HOOK_FAIL_OPEN: 'true', WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: 'true' }),
      });
    const alice = await bearer('alice');
    let server: TestServer | undefined;
    try {
      server = await startServer(await env(`${hook.url}/pre-create`));
      const late = await upload(randomBytes(200), { endpoint: `${server.url}/files`, filename: 'slow.bin', headers: alice });
      expect(hook.received.some((r) => r.body.filename === 'slow.bin')).toBe(true);
      expect(await waitForFinal(server.url, late, { headers: alice })).toMatchObject({ status: 'ready', appMetadata: null });
      // A working answer still counts.
      const asked = await upload(randomBytes(200), { endpoint: `${server.url}/files`, filename: 'accept.bin', headers: alice });
      expect(await waitForFinal(server.url, asked, { headers: alice })).toMatchObject({ appMetadata: { productId: 'p-42' } });
      await server.stop();
      server = undefined;

      server = await startServer(await env(`http://127.0.0.1:${down}/pre-create`));
      const unasked = await upload(randomBytes(200), { endpoint: `${server.url}/files`, filename: 'accept.bin', headers: alice });
      expect(await waitForFinal(server.url, unasked, { headers: alice })).toMatchObject({ status: 'ready', appMetadata: null });
    } finally {
      await server?.stop();
      await hook.close();
      await db.drop();
    }
  }, 60_000);
});
