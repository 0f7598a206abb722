// Outgoing webhooks over real HTTP against real Postgres: a receiver in the test verifies every
// request with the `standardwebhooks` package. Events come from the outbox trigger, in the
// transaction of each status change: one file's events arrive in order, a retried event keeps its
// webhook-id, a change that rolls back has no event, and endpoints get only the events they want.
// Infected files (real clamd) are announced with their signature; during a secret rotation every
// request carries two signatures; the metrics show the backlog and the delivery latency.
import { createServer } from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFile, waitForFinal } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { eicar, SIGNATURES } from '../support/clamd.js';
import { metric, scrape } from '../support/metrics.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { freePort, waitFor } from '../support/ports.js';
import { serverEnv, spawnServer, startServer, type TestServer } from '../support/server.js';
import { upload } from '../support/tus.js';
import { startReceiver, verify as verifyWith, type Receiver, type Received } from '../support/webhook-receiver.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const OLD_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

const verify = (request: Received, secret = SECRET): unknown => verifyWith(request, secret);

describe('webhooks', () => {
  let db: TestDatabase;
  let server: TestServer;
  let receiver: Receiver;
  let alice: Record<string, string>;
  let admin: Record<string, string>;
  const failOnce = new Set<string>();

  const admin$ = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}/api/admin${path}`, {
      ...init,
      headers: { ...admin, ...(init.body ? { 'content-type': 'application/json' } : {}) },
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    receiver = await startReceiver((request) => {
      // The first upload.created of a file whose name says so is answered 500 (once).
      const key = `${request.body.data?.id}:${request.body.type}`;
      if (String(request.body.data?.filename).startsWith('fail-once') && request.body.type === 'upload.created' && !failOnce.has(key)) {
        failOnce.add(key);
        return 500;
      }
      return 200;
    });
    const extra = jwtEnv({
      WEBHOOK_URL: `${receiver.url}/hook`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_PRIVATE: 'true',
      CLAMAV_HOST: inject('clamdHost'),
      CLAMAV_PORT: String(inject('clamdPort')),
    });
    server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra }));
    alice = await bearer('alice');
    admin = await bearer('root', { role: 'admin' });
  });
  afterAll(async () => {
    await server?.stop();
    await receiver?.close();
    await db?.drop();
  });

  it('announces upload.created, upload.completed and file.ready in order, signed, with the record; a retry keeps the webhook-id', async () => {
    const id = await upload(randomBytes(2000), { endpoint: `${server.url}/files`, filename: 'fail-once.bin', headers: alice });
    const record = await waitForFinal(server.url, id, { headers: alice });
    expect(record.status).toBe('ready');
    const requests = await waitFor(() => {
      const list = receiver.about(id);
      return list.some((r) => r.body.type === 'file.ready') && list;
    }, { timeoutMs: 30_000, what: 'file.ready webhook' });

    // The 500 answer was retried (graphile-worker's backoff) before anything later was sent.
    expect(requests.map((r) => `${r.body.type}:${r.answered}`)).toEqual([
      'upload.created:500',
      'upload.created:200',
      'upload.completed:200',
      'file.ready:200',
    ]);
    expect(requests[0]!.headers['webhook-id']).toBe(requests[1]!.headers['webhook-id']);
    expect(requests[0]!.raw).toBe(requests[1]!.raw);
    expect(new Set(requests.map((r) => r.headers['webhook-id'])).size).toBe(3);
    for (const request of requests) {
      expect(request.path).toBe('/hook');
      expect(request.headers['webhook-signature']).toMatch(/^v1,/);
      expect(verify(request)).toEqual(request.body);
    }
    // A wrong secret does not verify.
    expect(() => verify(requests[3]!, `whsec_${randomBytes(32).toString('base64')}`)).toThrow();

    const [created, , completed, ready] = requests.map((r) => r.body);
    expect(created!.data).toMatchObject({ id, status: 'uploading', ownerId: 'alice', filename: 'fail-once.bin' });
    expect(completed!.data).toMatchObject({ id, status: 'processing' });
    // file.ready carries the record exactly as GET /api/files/:id shows it.
    expect(ready!.data).toEqual(await getFile(server.url, id, alice));
    expect(Date.parse(ready!.timestamp)).toBeGreaterThan(0);

    // The deliveries API shows the attempts.
    const { webhooks } = (await (await admin$('/webhooks')).json()) as { webhooks: Array<{ id: string; fromConfig: boolean; url: string }> };
    const configured = webhooks.find((w) => w.fromConfig)!;
    expect(configured.url).toBe(`${receiver.url}/hook`);
    const { deliveries } = (await (await admin$(`/webhooks/${configured.id}/deliveries`)).json()) as {
      deliveries: Array<{ id: string; eventId: string; uploadId: string; type: string; status: string; attempts: number; responseStatus: number }>;
    };
    const mine = deliveries.filter((d) => d.uploadId === id);
    expect(mine.map((d) => [d.type, d.status, d.attempts, d.responseStatus])).toEqual([
      ['file.ready', 'delivered', 1, 200],
      ['upload.completed', 'delivered', 1, 200],
      ['upload.created', 'delivered', 2, 200],
    ]);

    // A retry through the admin API sends the same event (same webhook-id) again.
    const createdDelivery = mine[2]!;
    const retried = await admin$(`/webhooks/deliveries/${createdDelivery.id}/retry`, { method: 'POST' });
    expect(retried.status).toBe(202);
    await waitFor(() => receiver.about(id).length === 5, { what: 'the retried delivery' });
    expect(receiver.about(id)[4]!.headers['webhook-id']).toBe(createdDelivery.eventId);
  });

  it('announces each of 50 concurrent uploads exactly once per event, verified, in order per file, matching the API', async () => {
    const files = Array.from({ length: 50 }, (_, i) => ({ name: `many-${i}.bin`, bytes: randomBytes(1000 + i) }));
    const ids: string[] = [];
    // Ten clients at a time, as a busy page would send them.
    for (let i = 0; i < files.length; i += 10) {
      ids.push(
        ...(await Promise.all(
          files.slice(i, i + 10).map((file) => upload(file.bytes, { endpoint: `${server.url}/files`, filename: file.name, headers: alice })),
        )),
      );
    }
    // Each is scanned by the shared clamd: on a busy machine 50 take a while.
    const records = await Promise.all(ids.map((id) => waitForFinal(server.url, id, { headers: alice, timeoutMs: 120_000 })));
    expect(records.map((record) => record.status)).toEqual(ids.map(() => 'ready'));
    await waitFor(() => ids.every((id) => receiver.about(id).some((r) => r.body.type === 'file.ready')), {
      timeoutMs: 60_000,
      what: 'file.ready for all 50 uploads',
    });
    for (const [index, id] of ids.entries()) {
      const requests = receiver.about(id);
      // Every request verifies; each event is one webhook-id, delivered once (the receiver answered 200).
      for (const request of requests) expect(verify(request)).toEqual(request.body);
      expect(requests.map((r) => r.body.type)).toEqual(['upload.created', 'upload.completed', 'file.ready']);
      expect(new Set(requests.map((r) => r.headers['webhook-id'])).size).toBe(3);
      const ready = requests[2]!.body.data;
      expect(ready).toEqual(records[index]);
      expect(ready.sha256).toBe(createHash('sha256').update(files[index]!.bytes).digest('hex'));
      expect(ready.filename).toBe(files[index]!.name);
    }
  }, 240_000);

  it('writes no event for a change that rolls back, and one for the same change committed', async () => {
    const id = await upload(randomBytes(500), { endpoint: `${server.url}/files`, filename: 'rollback.bin', headers: alice });
    await waitForFinal(server.url, id, { headers: alice });
    await waitFor(() => receiver.about(id).some((r) => r.body.type === 'file.ready'), { what: 'file.ready' });

    const ghost = randomBytes(16).toString('hex');
    await db.sql
      .begin(async (tx) => {
        await tx`update uploads set status = 'failed', failure_reason = 'rolled back' where id = ${id}`;
        await tx`insert into uploads (id, owner_id, filename, kind) values (${ghost}, 'alice', 'ghost.bin', 'other')`;
        throw new Error('roll back');
      })
      .catch((error: Error) => expect(error.message).toBe('roll back'));
    expect(await db.sql`select id from webhook_events where upload_id in (${id}, ${ghost}) and type <> all(${['upload.created', 'upload.completed', 'file.ready']})`).toHaveLength(0);
    expect(await db.sql`select id from webhook_events where upload_id = ${ghost}`).toHaveLength(0);

    // The same change committed (outside any of our code paths: plain SQL) is announced.
    await db.sql`update uploads set status = 'failed', failure_reason = 'committed' where id = ${id}`;
    const failed = await waitFor(() => receiver.about(id).find((r) => r.body.type === 'file.failed'), { what: 'file.failed' });
    expect(failed.body.data).toMatchObject({ id, status: 'failed', failureReason: 'committed' });
    // Nothing else arrived for this file: the rolled-back change left nothing to send before it.
    expect(receiver.about(id).map((r) => r.body.type)).toEqual(['upload.created', 'upload.completed', 'file.ready', 'file.failed']);
  });

  it('announces file.deleted for DELETE /api/files/:id and file.rejected for a file that is not what it says', async () => {
    const id = await upload(randomBytes(300), { endpoint: `${server.url}/files`, filename: 'gone.bin', headers: alice });
    await waitForFinal(server.url, id, { headers: alice });
    const response = await fetch(`${server.url}/api/files/${id}`, { method: 'DELETE', headers: alice });
    expect(response.status).toBeLessThan(300);
    const deleted = await waitFor(() => receiver.about(id).find((r) => r.body.type === 'file.deleted'), { what: 'file.deleted' });
    expect(deleted.body.data).toMatchObject({ id, status: 'deleted', filename: 'gone.bin' });
    expect(verify(deleted)).toEqual(deleted.body);

    const bad = await upload(randomBytes(300), { endpoint: `${server.url}/files`, filename: 'fake.fseq', headers: alice });
    expect((await waitForFinal(server.url, bad, { headers: alice })).status).toBe('rejected');
    const rejected = await waitFor(() => receiver.about(bad).find((r) => r.body.type === 'file.rejected'), { what: 'file.rejected' });
    expect(rejected.body.data.rejectionReason).toEqual(expect.any(String));
  });

  it('announces file.infected with the signature clamd found', async () => {
    const data = Buffer.concat([Buffer.from(`notes ${randomBytes(8).toString('hex')}\n`), eicar()]);
    const id = await upload(data, { endpoint: `${server.url}/files`, filename: 'notes.txt', headers: alice });
    expect((await waitForFinal(server.url, id, { headers: alice })).status).toBe('infected');
    const infected = await waitFor(() => receiver.about(id).find((r) => r.body.type === 'file.infected'), { what: 'file.infected' });
    expect(verify(infected)).toEqual(infected.body);
    expect(infected.body.data).toMatchObject({ id, status: 'infected', scan: { status: 'infected', signature: SIGNATURES.eicar } });
    expect(infected.body.data).toEqual(await getFile(server.url, id, alice));
    expect(receiver.about(id).map((r) => r.body.type)).toEqual(['upload.created', 'upload.completed', 'file.infected']);
  });

  it('announces file.expired when the lifecycle sweep expires an abandoned upload', async () => {
    const created = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...alice, 'Tus-Resumable': '1.0.0', 'Upload-Length': '1000', 'Upload-Metadata': `filename ${Buffer.from('abandoned.bin').toString('base64')}` },
    });
    expect(created.status).toBe(201);
    const id = new URL(created.headers.get('location')!, server.url).pathname.split('/').pop()!;
    await waitFor(() => receiver.about(id).some((r) => r.body.type === 'upload.created'), { what: 'upload.created' });
    await db.sql`update uploads set expires_at = now() - interval '1 minute' where id = ${id}`;
    const sweep = await admin$('/uploads/cleanup', { method: 'POST', body: JSON.stringify({ dryRun: false }) });
    expect(sweep.status).toBe(200);
    const expired = await waitFor(() => receiver.about(id).find((r) => r.body.type === 'file.expired'), { what: 'file.expired' });
    expect(expired.body.data).toMatchObject({ id, status: 'expired', filename: 'abandoned.bin' });
    expect(receiver.about(id).map((r) => r.body.type)).toEqual(['upload.created', 'file.expired']);
  });

  it('purges events past WEBHOOK_RETENTION that were delivered everywhere (the sweep); others stay', async () => {
    const id = await upload(randomBytes(250), { endpoint: `${server.url}/files`, filename: 'retained.bin', headers: alice });
    await waitForFinal(server.url, id, { headers: alice });
    const deliveries = () => db.sql<{ type: string; status: string }[]>`
      select e.type, d.status from webhook_deliveries d join webhook_events e on e.id = d.event_id where e.upload_id = ${id} order by e.seq`;
    await waitFor(async () => (await deliveries()).filter((d) => d.status === 'delivered').length === 3, { what: 'three delivered events' });
    // One delivery gave up: its event stays (for a retry); all three are older than the default 30 days.
    await db.sql`update webhook_deliveries d set status = 'failed' from webhook_events e where e.id = d.event_id and e.upload_id = ${id} and e.type = 'upload.created'`;
    await db.sql`update webhook_events set occurred_at = now() - interval '31 days' where upload_id = ${id}`;

    const sweep = async (dryRun: boolean) =>
      ((await (await admin$('/uploads/cleanup', { method: 'POST', body: JSON.stringify({ dryRun }) })).json()) as { webhookEvents: { count: number } }).webhookEvents;
    expect(await sweep(true)).toEqual({ count: 2, bytes: 0, ids: [] });
    expect(await deliveries()).toHaveLength(3);
    expect((await sweep(false)).count).toBe(2);
    expect(await deliveries()).toEqual([{ type: 'upload.created', status: 'failed' }]);
    expect((await sweep(false)).count).toBe(0);
  });

  it('sends an endpoint only the events it asked for; removed endpoints get nothing', async () => {
    const created = await admin$('/webhooks', {
      method: 'POST',
      body: JSON.stringify({ url: `${receiver.url}/only-ready`, events: ['file.ready'] }),
    });
    expect(created.status).toBe(201);
    const endpoint = (await created.json()) as { id: string; secret: string; events: string[] };
    expect(endpoint.secret).toMatch(/^whsec_/);
    expect(endpoint.events).toEqual(['file.ready']);
    const listed = (await (await admin$('/webhooks')).json()) as { webhooks: Array<Record<string, unknown>> };
    expect(listed.webhooks.find((w) => w.id === endpoint.id)).not.toHaveProperty('secret');

    const id = await upload(randomBytes(400), { endpoint: `${server.url}/files`, filename: 'filtered.bin', headers: alice });
    await waitForFinal(server.url, id, { headers: alice });
    const ready = await waitFor(() => receiver.about(id, '/only-ready').find((r) => r.body.type === 'file.ready'), { what: 'filtered file.ready' });
    expect(verify(ready, endpoint.secret)).toEqual(ready.body);
    await waitFor(() => receiver.about(id, '/hook').some((r) => r.body.type === 'file.ready'), { what: 'unfiltered file.ready' });
    expect(receiver.about(id, '/only-ready').map((r) => r.body.type)).toEqual(['file.ready']);

    // The test route sends a signed webhook.test now.
    const test = await admin$(`/webhooks/${endpoint.id}/test`, { method: 'POST' });
    expect(await test.json()).toMatchObject({ ok: true, status: 200 });
    const probe = receiver.received.find((r) => r.body.type === 'webhook.test')!;
    expect(verify(probe, endpoint.secret)).toEqual(probe.body);

    expect((await admin$(`/webhooks/${endpoint.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await admin$(`/webhooks/${endpoint.id}`, { method: 'DELETE' })).status).toBe(404);
    const after = await upload(randomBytes(400), { endpoint: `${server.url}/files`, filename: 'after.bin', headers: alice });
    await waitForFinal(server.url, after, { headers: alice });
    await waitFor(() => receiver.about(after, '/hook').some((r) => r.body.type === 'file.ready'), { what: 'file.ready after removal' });
    expect(receiver.about(after, '/only-ready')).toHaveLength(0);

    // The admin routes are in the OpenAPI document.
    const document = (await (await fetch(`${server.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    for (const path of [
      '/api/admin/webhooks',
      '/api/admin/webhooks/{id}',
      '/api/admin/webhooks/{id}/deliveries',
      '/api/admin/webhooks/deliveries/{id}/retry',
      '/api/admin/webhooks/{id}/test',
      '/api/admin/webhooks/{id}/rotate-secret',
      '/api/admin/webhooks/{id}/previous-secret',
    ]) expect(document.paths).toHaveProperty([path]);

    // Non-admins cannot manage webhooks; bad URLs are refused.
    expect((await fetch(`${server.url}/api/admin/webhooks`, { headers: alice })).status).toBe(403);
    const ftp = await admin$('/webhooks', { method: 'POST', body: JSON.stringify({ url: 'ftp://example.com/x' }) });
    expect(ftp.status).toBe(400);
  });

  it('signs with both secrets during a rotation, then with the new one only', async () => {
    const created = await admin$('/webhooks', { method: 'POST', body: JSON.stringify({ url: `${receiver.url}/rotating`, events: ['file.ready'] }) });
    const old = (await created.json()) as { id: string; secret: string };
    const rotated = await admin$(`/webhooks/${old.id}/rotate-secret`, { method: 'POST', body: JSON.stringify({ keepPreviousFor: '1h' }) });
    expect(rotated.status).toBe(200);
    const next = (await rotated.json()) as { secret: string; previousSecretActive: boolean; previousSecretUntil: string | null };
    expect(next.secret).toMatch(/^whsec_/);
    expect(next.secret).not.toBe(old.secret);
    expect(next).toMatchObject({ previousSecretActive: true, previousSecretUntil: expect.any(String) });

    const readyOf = async (filename: string) => {
      const id = await upload(randomBytes(300), { endpoint: `${server.url}/files`, filename, headers: alice });
      await waitForFinal(server.url, id, { headers: alice });
      return waitFor(() => receiver.about(id, '/rotating').find((r) => r.body.type === 'file.ready'), { what: `${filename} file.ready` });
    };
    const during = await readyOf('rotating.bin');
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of [old.secret, next.secret]) expect(verify(during, secret)).toEqual(during.body);

    expect((await admin$(`/webhooks/${old.id}/previous-secret`, { method: 'DELETE' })).status).toBe(204);
    const listed = (await (await admin$('/webhooks')).json()) as { webhooks: Array<{ id: string; fromConfig: boolean; previousSecretActive: boolean }> };
    expect(listed.webhooks.find((w) => w.id === old.id)!.previousSecretActive).toBe(false);
    const after = await readyOf('rotated.bin');
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verify(after, next.secret)).toEqual(after.body);
    expect(() => verify(after, old.secret)).toThrow();

    // WEBHOOK_URL's endpoint rotates through WEBHOOK_SECRET; unknown endpoints are 404.
    const configured = listed.webhooks.find((w) => w.fromConfig)!;
    expect((await admin$(`/webhooks/${configured.id}/rotate-secret`, { method: 'POST', body: '{}' })).status).toBe(409);
    expect((await admin$(`/webhooks/${randomUUID()}/rotate-secret`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await admin$(`/webhooks/${old.id}/rotate-secret`, { method: 'POST', body: JSON.stringify({ keepPreviousFor: '90d' }) })).status).toBe(400);
    expect((await admin$(`/webhooks/${old.id}`, { method: 'DELETE' })).status).toBe(204);
  });
});

describe('WEBHOOK_EVENTS and WEBHOOK_SECRET', () => {
  it('limits the configured endpoint to the listed events, signed by both secrets of a rotation', async () => {
    const db = await createTestDatabase();
    const receiver = await startReceiver();
    const extra = jwtEnv({
      WEBHOOK_URL: `${receiver.url}/hook`,
      // A rotation under way: the new secret and the old one.
      WEBHOOK_SECRET: `${SECRET} ${OLD_SECRET}`,
      WEBHOOK_EVENTS: 'file.ready,file.deleted',
      WEBHOOK_ALLOW_PRIVATE: 'true',
    });
    const server = await startServer(await serverEnv({ databaseUrl: db.url, storage: 'file', extra }));
    try {
      const alice = await bearer('alice');
      const id = await upload(randomBytes(700), { endpoint: `${server.url}/files`, filename: 'only.bin', headers: alice });
      await waitForFinal(server.url, id, { headers: alice });
      await fetch(`${server.url}/api/files/${id}`, { method: 'DELETE', headers: alice });
      await waitFor(() => receiver.about(id).some((r) => r.body.type === 'file.deleted'), { what: 'file.deleted' });
      expect(receiver.about(id).map((r) => r.body.type)).toEqual(['file.ready', 'file.deleted']);
      for (const request of receiver.about(id)) {
        for (const secret of [SECRET, OLD_SECRET]) expect(verify(request, secret)).toEqual(request.body);
      }
      // Events nobody wants are not even written.
      expect(await db.sql`select type from webhook_events where upload_id = ${id} order by seq`).toEqual([{ type: 'file.ready' }, { type: 'file.deleted' }]);
    } finally {
      await server.stop();
      await receiver.close();
      await db.drop();
    }
  });
});

describe('a server killed with deliveries pending', () => {
  it('delivers every committed event after a restart (the same webhook-id for the one in flight)', async () => {
    const db = await createTestDatabase();
    // The receiver holds every request until released: the server dies with a delivery in flight.
    let hold = true;
    const held: Array<() => void> = [];
    const receiver = await startReceiver();
    const gate = createServer((req, res) => {
      const release = () => {
        const forward = fetch(`${receiver.url}${req.url}`, { method: 'POST', headers: req.headers as Record<string, string>, body: req as never, duplex: 'half' } as RequestInit);
        void forward.then((r) => res.writeHead(r.status).end(), () => res.destroy());
      };
      if (hold) held.push(release);
      else release();
    });
    await new Promise<void>((resolve) => gate.listen(0, '127.0.0.1', resolve));
    const address = gate.address();
    const gateUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const env = await serverEnv({
      databaseUrl: db.url,
      storage: 'file',
      extra: jwtEnv({ WEBHOOK_URL: `${gateUrl}/hook`, WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: 'true' }),
    });
    const child = await spawnServer(env);
    let server: TestServer | undefined;
    try {
      const alice = await bearer('alice');
      const id = await upload(randomBytes(900), { endpoint: `${child.url}/files`, filename: 'crash.bin', headers: alice });
      await waitForFinal(child.url, id, { headers: alice });
      await waitFor(() => held.length > 0, { what: 'a delivery in flight' });
      await child.kill('SIGKILL');
      expect(receiver.about(id)).toHaveLength(0);

      hold = false;
      for (const release of held.splice(0)) release(); // the dead server's request goes nowhere
      server = await startServer({ ...env, DATA_DIR: env.DATA_DIR! });
      await waitFor(() => receiver.about(id).some((r) => r.body.type === 'file.ready'), { timeoutMs: 60_000, what: 'file.ready after restart' });
      const types = receiver.about(id).map((r) => r.body.type);
      // At least once, in order: the in-flight upload.created may come twice (same webhook-id).
      expect([...new Set(types)]).toEqual(['upload.created', 'upload.completed', 'file.ready']);
      const ids = new Set(receiver.about(id).map((r) => r.headers['webhook-id']));
      expect(ids.size).toBe(3);
      for (const request of receiver.about(id)) expect(verify(request)).toEqual(request.body);
    } finally {
      await child.kill('SIGKILL');
      await server?.stop();
      await new Promise<void>((resolve) => gate.close(() => resolve()));
      await receiver.close();
      await db.drop();
    }
  }, 90_000);
});

describe('a receiver that is down for a while', () => {
  it('gets every event, in order, once it recovers (connection refused, then 500); the attempts are visible', async () => {
    const db = await createTestDatabase();
    const port = await freePort(); // nothing listens there yet: connections are refused
    const env = await serverEnv({
      databaseUrl: db.url,
      storage: 'file',
      extra: jwtEnv({ WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: 'true' }),
    });
    const server = await startServer(env);
    let receiver: Receiver | undefined;
    try {
      const alice = await bearer('alice');
      const admin = await bearer('root', { role: 'admin' });
      const id = await upload(randomBytes(600), { endpoint: `${server.url}/files`, filename: 'down.bin', headers: alice });
      await waitForFinal(server.url, id, { headers: alice });
      const { webhooks } = (await (await fetch(`${server.url}/api/admin/webhooks`, { headers: admin })).json()) as { webhooks: Array<{ id: string }> };
      type Delivery = { type: string; status: string; attempts: number; responseStatus: number | null; lastError: string | null };
      const deliveries = async () =>
        ((await (await fetch(`${server.url}/api/admin/webhooks/${webhooks[0]!.id}/deliveries`, { headers: admin })).json()) as { deliveries: Delivery[] })
          .deliveries;
      const refused = await waitFor(async () => (await deliveries()).find((d) => d.type === 'upload.created' && d.attempts >= 1), { what: 'a refused attempt' });
      expect(refused).toMatchObject({ status: 'pending', responseStatus: null, lastError: expect.stringMatching(/ECONNREFUSED/) });
      expect(await deliveries()).toHaveLength(3);
      // The backlog gauges see them (this is the only server of the process now).
      const backlog = await scrape(server.url);
      expect(metric(backlog, 'tusvault_webhook_backlog')).toBe(3);
      expect(metric(backlog, 'tusvault_webhook_backlog_oldest_seconds')).toBeGreaterThan(0);

      // The receiver comes up, answers 500 once, then 200.
      let answered = 0;
      receiver = await startReceiver(() => (answered++ === 0 ? 500 : 200), { port });
      await waitFor(() => receiver!.about(id).some((r) => r.body.type === 'file.ready'), { timeoutMs: 60_000, what: 'delivery after recovery' });
      expect(receiver.about(id).map((r) => `${r.body.type}:${r.answered}`)).toEqual([
        'upload.created:500',
        'upload.created:200',
        'upload.completed:200',
        'file.ready:200',
      ]);
      const final = await waitFor(async () => {
        const list = await deliveries();
        return list.every((d) => d.status === 'delivered') && list;
      }, { what: 'all delivered' });
      expect(final.find((d) => d.type === 'upload.created')!.attempts).toBeGreaterThanOrEqual(3);
      const after = await scrape(server.url);
      expect(metric(after, 'tusvault_webhook_backlog')).toBe(0);
      expect(metric(after, 'tusvault_webhook_delivery_latency_seconds_count{event="upload.created"}')).toBeGreaterThan(0);
      expect(metric(after, 'tusvault_webhook_attempts_total{event="upload.created",outcome="retry"}')).toBeGreaterThanOrEqual(2);
    } finally {
      await server.stop();
      await receiver?.close();
      await db.drop();
    }
  }, 120_000);
});
