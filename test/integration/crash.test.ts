// Crashes: the server process is killed with SIGKILL (no chance to clean up) and restarted on the
// same database and storage. Every acknowledged byte must survive and every finished upload must
// still be processed.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { waitFor } from '../support/ports.js';
import { serverEnv, spawnServer, type ChildServer, type StorageKind } from '../support/server.js';
import { createUpload, idOf, sha256 } from '../support/tus.js';

const MiB = 1024 * 1024;
const PATIENT_RETRIES = [0, 300, 600, 1000, 1000, 1500, 2000, 2000, 3000, 3000, 4000, 5000, 5000];

describe.each<StorageKind>(['file', 's3'])('crash recovery with %s storage', (storage) => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let server: ChildServer | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    env = await serverEnv({ databaseUrl: db.url, storage, extra: { RECONCILE_AFTER: '1s' } });
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  it('resumes after the server is killed mid-upload and ends byte-identical', async () => {
    server = await spawnServer(env);
    const port = server.port;
    const chunkSize = storage === 's3' ? 5 * MiB : 1 * MiB;
    const data = randomBytes(6 * chunkSize + 777);
    let killed = false;
    let restarted: Promise<ChildServer> | undefined;

    const done = new Promise<string>((resolve, reject) => {
      const instance = createUpload(
        data,
        { endpoint: `${server!.url}/files`, filename: 'crash.bin', chunkSize, retryDelays: PATIENT_RETRIES },
        { onSuccess: () => resolve(instance.url!), onError: reject },
      );
      instance.options.onChunkComplete = (_size, accepted) => {
        if (!killed && accepted >= 2 * chunkSize) {
          killed = true;
          // SIGKILL while the next chunk is on the wire, then start again on the same port.
          setTimeout(() => {
            restarted = server!.kill('SIGKILL').then(() => spawnServer(env, port));
          }, 20);
        }
      };
      instance.start();
    });

    const url = await done;
    expect(killed).toBe(true);
    server = await restarted!;
    const record = await waitForFinal(server.url, idOf(url));
    expect(record.status).toBe('ready');
    expect(record.size).toBe(data.length);
    expect(record.sha256).toBe(sha256(data));
  });

  it('still finishes an upload when the process dies between the final PATCH and the job', async () => {
    server ??= await spawnServer(env);
    const data = randomBytes(64 * 1024);
    const create = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Length': String(data.length),
        'Upload-Metadata': `filename ${Buffer.from('final.bin').toString('base64')}`,
      },
    });
    expect(create.status).toBe(201);
    const location = create.headers.get('location')!;
    const id = idOf(location);

    // Hold the upload's row so the finish hook (mark processing + enqueue) cannot commit.
    const blocker = postgres(db.url, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const locked = new Promise<void>((resolveLocked, rejectLocked) => {
      blocker
        .begin(async (tx) => {
          await tx`select id from uploads where id = ${id} for update`;
          resolveLocked();
          await held;
          throw new Error('rollback');
        })
        .catch((error: Error) => {
          if (error.message !== 'rollback') rejectLocked(error);
        });
    });
    await locked;

    // The final (and only) PATCH: all bytes are stored, then the hook blocks on the row lock.
    const patch = fetch(location, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: data,
    }).catch((error: unknown) => error);
    const [row] = await waitFor(
      async () => {
        const rows = await db.sql<{ pid: number; query: string }[]>`
          select pid, query from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query ilike '%update uploads%status = ''processing''%'`;
        return rows.length > 0 ? rows : null;
      },
      { what: 'the finish hook to wait on the row lock' },
    );
    expect(row!.query).toContain('update uploads');

    const port = server.port;
    await server.kill('SIGKILL');
    expect(await patch).toBeInstanceOf(Error); // the client never got an answer
    // The process is gone; its backend would only notice when it next talks to the client, and
    // might still commit the statement it was blocked in. End it, as a lost connection does.
    await db.sql`select pg_terminate_backend(${row!.pid})`;
    release();
    await blocker.end();

    const [before] = await db.sql<{ status: string }[]>`select status from uploads where id = ${id}`;
    expect(before!.status).toBe('uploading');

    // No client comes back: the reconciler alone must find the finished bytes.
    server = await spawnServer(env, port);
    const record = await waitForFinal(server.url, id, { timeoutMs: 30_000 });
    expect(record.status).toBe('ready');
    expect(record.sha256).toBe(sha256(data));
  });
});
