// `tusvault previews backfill` as the real binary against real PostgreSQL and a running server
// (disk storage): content stored before previews existed, and content whose previews were made
// with an older option set, get the current previews, in batches; old ones stay untouched; a
// second run enqueues nothing; a dry run changes nothing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFile, waitForFinal, type FileRecord } from '../support/api.js';
import { bearer, jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildFseqV2Frames } from '../support/fixture-builders.js';
import { waitFor } from '../support/ports.js';
import { ROOT, serverEnv, spawnServer, startServer, type ChildServer, type TestServer } from '../support/server.js';
import { sha256, upload } from '../support/tus.js';

interface Report {
  dryRun: boolean;
  scanned: number;
  enqueued: number;
  sha256s: string[];
  retried: string[];
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
    expect(dry.report).toEqual({ dryRun: true, scanned: 3, enqueued: 0, sha256s: [show, photo].sort(), retried: [] });
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
    expect(again.report).toEqual({ dryRun: false, scanned: 3, enqueued: 0, sha256s: [], retried: [] });
  });

  it('an image stored before image metadata existed gets it with its previews; metadata it has is kept', async () => {
    const image = (width: number) =>
      sharp({ create: { width, height: 80, channels: 3, background: { r: randomBytes(1)[0]!, g: 7, b: 70 } } })
        .jpeg()
        .toBuffer();
    const [lacking, having] = [await send(await image(120), 'before.jpg'), await send(await image(90), 'has-some.jpg')];
    const [lackingSha, havingSha] = [lacking.sha256!, having.sha256!];
    for (const sha of [lackingSha, havingSha]) await previewCount(sha, 2);
    expect(lacking.metadata).toMatchObject({ width: 120, height: 80, format: 'jpeg' });
    // As stored before: no metadata and no previews; the other with metadata of its own.
    await db.sql`update blobs set metadata = null where sha256 = ${lackingSha}`;
    await db.sql`update blobs set metadata = ${db.sql.json({ width: 1, height: 1, format: 'kept' })} where sha256 = ${havingSha}`;
    await db.sql`delete from previews where sha256 in ${db.sql([lackingSha, havingSha])}`;
    expect((await getFile(server.url, lacking.id, alice)).metadata).toBeNull();

    const run = await backfill([], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.report!.sha256s).toEqual([lackingSha, havingSha].sort());
    for (const sha of [lackingSha, havingSha]) await previewCount(sha, 2);
    const filled = await waitFor(async () => (await getFile(server.url, lacking.id, alice)).metadata, { what: 'the filled-in metadata' });
    expect(filled).toEqual({ width: 120, height: 80, format: 'jpeg', hasAlpha: false });
    expect((await getFile(server.url, having.id, alice)).metadata).toEqual({ width: 1, height: 1, format: 'kept' });
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

// Previews recorded `failed` while ffmpeg was off, made again by --retry-failed once a worker has
// it; that worker's start also clears ffmpeg temporary directories a killed worker left (TMPDIR is
// the child's own, so the test sees exactly what it removes).
describe('tusvault previews backfill --retry-failed', { timeout: 240_000 }, () => {
  let db: TestDatabase;
  let server: TestServer | undefined;
  let worker: ChildServer | undefined;
  let env: Record<string, string>;
  let tmp: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    env = await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { ...jwtEnv(), LOG_LEVEL: 'warn', FFMPEG_PATH: 'off' } });
    server = await startServer(env);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'tusvault-backfill-tmp-'));
  });
  afterAll(async () => {
    await worker?.kill();
    await server?.stop();
    await db?.drop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const rows = (sha: string) =>
    db.sql<{ kind: string; status: string }[]>`select kind, status from previews where sha256 = ${sha} order by kind`;

  it('re-makes what the current options recorded as failed (dry run lists it); the worker start removes stale ffmpeg temp dirs', async () => {
    const alice = await bearer('alice');
    const memo = await readFile('/work/shared/fixtures/audio/mm_Apple__voice_memo.m4a');
    const id = await upload(memo, { endpoint: `${server!.url}/files`, filename: 'memo.m4a', headers: alice });
    expect((await waitForFinal(server!.url, id, { headers: alice })).status).toBe('ready');
    const sha = sha256(memo);
    await waitFor(async () => ((await rows(sha)).length === 2 ? true : null), { what: 'the failed previews' });
    expect(await rows(sha)).toEqual([
      { kind: 'peaks', status: 'failed' },
      { kind: 'waveform', status: 'failed' },
    ]);
    await server!.stop();
    server = undefined;

    // Left by a killed worker two hours ago, one of a decode running now, and someone else's.
    const aged = async (dir: string) => {
      await mkdir(dir);
      await writeFile(path.join(dir, 'input.m4a'), 'x');
      const then = new Date(Date.now() - 2 * 3_600_000);
      await utimes(dir, then, then);
    };
    const [stale, running, foreign] = ['tusvault-ffmpeg-stale', 'tusvault-ffmpeg-running', 'someone-else-old'].map((name) => path.join(tmp, name)) as [string, string, string];
    await aged(stale);
    await aged(foreign);
    await mkdir(running);
    const exists = (dir: string) => access(dir).then(() => true, () => false);

    // The same data with ffmpeg on (FFMPEG_PATH unset: ffmpeg on PATH).
    const { FFMPEG_PATH: _off, ...ffmpegOn } = env;
    worker = await spawnServer({ ...ffmpegOn, TMPDIR: tmp });
    await waitFor(async () => ((await exists(stale)) ? null : true), { what: 'the stale ffmpeg temp dir to go' });
    expect([await exists(running), await exists(foreign)]).toEqual([true, true]);
    expect(worker.output()).toContain('removed stale ffmpeg temporary directories');

    // Without the flag a failed record counts as done.
    const plain = await backfill([], ffmpegOn);
    expect(plain.report, plain.stderr).toEqual({ dryRun: false, scanned: 1, enqueued: 0, sha256s: [], retried: [] });

    const dry = await backfill(['--retry-failed', '--dry-run'], ffmpegOn);
    expect(dry.report, dry.stderr).toEqual({ dryRun: true, scanned: 1, enqueued: 0, sha256s: [sha], retried: [sha] });
    expect((await rows(sha)).map((row) => row.status)).toEqual(['failed', 'failed']);
    expect(await db.sql`select 1 from graphile_worker.jobs where task_identifier = 'make_previews'`).toHaveLength(0);

    const run = await backfill(['--retry-failed'], ffmpegOn);
    expect(run.report, run.stderr).toEqual({ dryRun: false, scanned: 1, enqueued: 1, sha256s: [sha], retried: [sha] });
    await waitFor(async () => ((await rows(sha)).every((row) => row.status === 'ready') && (await rows(sha)).length === 2 ? true : null), {
      what: 'peaks and waveform made with ffmpeg',
    });
    const list = (await (await fetch(`${worker.url}/api/files/${id}/previews`, { headers: alice })).json()) as {
      previews: Array<{ name: string; contentType: string }>;
      missing: unknown[];
    };
    expect(list.missing).toEqual([]);
    expect(list.previews.map((p) => [p.name, p.contentType]).sort()).toEqual([
      ['peaks.json', 'application/json'],
      ['waveform.png', 'image/png'],
    ]);
    const peaks = (await (await fetch(`${worker.url}/api/files/${id}/previews/peaks.json`, { headers: alice })).json()) as { length: number; data: number[] };
    expect(peaks.data).toHaveLength(peaks.length * 2);
    expect(Math.max(...peaks.data)).toBeGreaterThan(0);

    // Done: nothing failed is left to retry.
    const again = await backfill(['--retry-failed'], ffmpegOn);
    expect(again.report).toEqual({ dryRun: false, scanned: 1, enqueued: 0, sha256s: [], retried: [] });
  });
});
