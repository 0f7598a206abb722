// `tusvault previews backfill` as the real binary against real PostgreSQL and a running server
// (disk storage): content stored before previews existed, and content whose previews were made
// with an older option set, get the current previews, in batches; old ones stay untouched; a
// second run enqueues nothing; a dry run changes nothing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal, type FileRecord } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildFseqV2Frames } from '../support/fixture-builders.js';
import { waitFor } from '../support/ports.js';
import { ROOT, serverEnv, startServer, type TestServer } from '../support/server.js';
import { sha256, upload } from '../support/tus.js';

interface Report {
  dryRun: boolean;
  scanned: number;
  enqueued: number;
  sha256s: string[];
}

function backfill(args: string[], env: Record<string, string>): Promise<{ code: number; report: Report | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin', 'tusvault.mjs'), 'previews', 'backfill', '--json', ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, report: error ? null : (JSON.parse(stdout) as Report), stderr }),
    );
  });
}

describe('tusvault previews backfill', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let server: TestServer;
  let env: Record<string, string>;
  let alice: Record<string, string>;

  const send = async (data: Buffer, filename: string): Promise<FileRecord> => {
    const id = await upload(data, { endpoint: `${server.url}/files`, filename, headers: alice });
    return waitForFinal(server.url, id, { headers: alice });
  };
  const kindsOf = async (sha: string) =>
    (await db.sql<{ kind: string; options_hash: string }[]>`select kind, options_hash from previews where sha256 = ${sha} order by kind`).map(
      (row) => `${row.kind}@${row.options_hash}`,
    );
  const previewCount = async (sha: string, count: number) =>
    waitFor(async () => ((await db.sql`select 1 from previews where sha256 = ${sha}`).length === count ? true : null), {
      what: `${count} previews of ${sha}`,
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    env = await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { ...jwtEnv(), LOG_LEVEL: 'warn' } });
    server = await startServer(env);
    alice = await bearer('alice');
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('makes what is missing for the current options, in batches, once; older option sets stay', async () => {
    const frames = Array.from({ length: 12 }, (_, f) => Uint8Array.from([f * 20, ...randomBytes(7)]));
    const fseq = buildFseqV2Frames({ frames, compression: 'zlib', framesPerBlock: 4 });
    const jpeg = await sharp({ create: { width: 300, height: 200, channels: 3, background: { r: 9, g: randomBytes(1)[0]!, b: 90 } } })
      .jpeg()
      .toBuffer();
    const untouched = buildFseqV2Frames({ frames: frames.map((f) => Uint8Array.from(f).reverse()), compression: 'none' });
    const records = [await send(fseq, 'old-show.fseq'), await send(jpeg, 'old-photo.jpg'), await send(untouched, 'current.fseq')];
    expect(records.map((r) => r.status)).toEqual(['ready', 'ready', 'ready']);
    const [show, photo, current] = [sha256(fseq), sha256(jpeg), sha256(untouched)];
    for (const sha of [show, photo, current]) await previewCount(sha, 2);
    const currentKinds = await kindsOf(current);

    // The show as if stored before previews existed; the photo as if its thumbnails were made
    // with an older option set (its rows say so, and their objects stay where they are).
    await db.sql`delete from previews where sha256 = ${show}`;
    await db.sql`update previews set options_hash = 'old-options' || options_hash, storage_key = storage_key || '-old' where sha256 = ${photo}`;
    const oldPhoto = await kindsOf(photo);
    const previewJobs = () => db.sql`select 1 from graphile_worker.jobs where task_identifier = 'make_previews'`;
    await waitFor(async () => ((await previewJobs()).length === 0 ? true : null), { what: 'no previews job pending' });

    // Batches of one: every blob is looked at, only the two lacking current previews listed.
    const dry = await backfill(['--batch', '1', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.report).toEqual({ dryRun: true, scanned: 3, enqueued: 0, sha256s: [show, photo].sort() });
    expect(await previewJobs()).toHaveLength(0);
    expect(await kindsOf(show)).toEqual([]);

    const run = await backfill(['--batch', '2'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.report).toMatchObject({ dryRun: false, scanned: 3, enqueued: 2, sha256s: [show, photo].sort() });
    await previewCount(show, 2);
    await previewCount(photo, 4);
    // The same kinds and option set as content that never lacked them.
    expect(await kindsOf(show)).toEqual(currentKinds);
    // The old option set's records are untouched beside the new ones, served by the newest.
    const photoKinds = await kindsOf(photo);
    expect(photoKinds).toEqual(expect.arrayContaining(oldPhoto));
    expect(photoKinds.filter((k) => !oldPhoto.includes(k)).map((k) => k.split('@')[0]).sort()).toEqual(['thumbnail-1024', 'thumbnail-256']);
    const served = await fetch(`${server.url}/api/files/${records[1]!.id}/previews/thumbnail-256.webp`, { headers: alice });
    expect(served.status).toBe(200);
    expect(served.headers.get('etag')).not.toContain('old-options');
    expect((await sharp(Buffer.from(await served.arrayBuffer())).metadata()).width).toBe(256);

    // Nothing left to do: a second run enqueues nothing.
    const again = await backfill([], env);
    expect(again.report).toEqual({ dryRun: false, scanned: 3, enqueued: 0, sha256s: [] });
  });

  it('refuses a bad batch size with the usage exit code', async () => {
    const bad = await backfill(['--batch', '0'], env);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/--batch must be a whole number/);
  });

  it('has a help text', async () => {
    const help = await new Promise<string>((resolve) =>
      execFile(process.execPath, [path.join(ROOT, 'bin', 'tusvault.mjs'), 'previews', '--help'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } }, (_e, stdout) =>
        resolve(stdout),
      ),
    );
    expect(help).toMatch(/^Usage: tusvault previews backfill \[--batch N\]/);
  });
});
