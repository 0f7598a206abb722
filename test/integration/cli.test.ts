// The `tusvault` command line, run as the real binary (bin/tusvault.mjs, what `npx tusvault` and
// package.json's bin run) in child processes against the test PostgreSQL and a running server:
// tokens it mints open the API, what it lists and sets is what the API answers, and its exit codes
// tell a usage mistake (64), a broken configuration (78) and an unreachable dependency (1) apart.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { jwtEnv } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { freePort } from '../support/ports.js';
import { ROOT, serverEnv, startServer, type TestServer } from '../support/server.js';
import { upload } from '../support/tus.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tusvault(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'bin', 'tusvault.mjs'), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// Every command is a new Node process loading TypeScript through tsx: slow on a busy machine.
describe('tusvault command line', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let server: TestServer;
  let env: Record<string, string>;
  const cli = (...args: string[]) => tusvault(args, env);
  const tokenFor = async (...args: string[]) => {
    const run = await cli('token', ...args);
    expect(run.code, run.stderr).toBe(0);
    return { Authorization: `Bearer ${run.stdout.trim()}` };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    // The server's own reconciler waits 30 days, so only the command's (RECONCILE_AFTER=5m) repairs
    // the file the reconcile test leaves stuck: the two would race for it.
    env = await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { ...jwtEnv(), LOG_LEVEL: 'warn', RECONCILE_AFTER: '30d' } });
    // The schema comes from `tusvault migrate`, not from a server start.
    const migrated = await cli('migrate');
    expect(migrated.code, migrated.stderr).toBe(0);
    server = await startServer(env);
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
  });

  it('migrate creates the schema and is a no-op the second time', async () => {
    const [row] = await db.sql<{ uploads: string | null; jobs: string | null }[]>`
      select to_regclass('public.uploads')::text as uploads, to_regclass('graphile_worker.jobs')::text as jobs`;
    expect(row).toEqual({ uploads: 'uploads', jobs: 'graphile_worker.jobs' });
    const again = await cli('migrate');
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('up to date');
  });

  it('prints help for every command and tells usage mistakes apart (exit 64)', async () => {
    const overview = await cli('--help');
    expect(overview.code).toBe(0);
    const names = ['serve', 'migrate', 'lifecycle', 'reconcile', 'quota', 'files', 'token', 'check'];
    const helps = await Promise.all(names.map((name) => cli(name, '--help')));
    names.forEach((name, i) => {
      expect(overview.stdout).toContain(`  ${name} `);
      expect(helps[i]!.code, name).toBe(0);
      expect(helps[i]!.stdout).toMatch(new RegExp(`^Usage: tusvault ${name}`));
    });
    // `npx tusvault` finds the package's own bin.
    const npx = await new Promise<Run>((resolve) =>
      execFile('npx', ['--no-install', 'tusvault', 'help', 'token'], { cwd: ROOT, env: { ...process.env, ...env } }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(npx.code, npx.stderr).toBe(0);
    expect(npx.stdout).toMatch(/^Usage: tusvault token --sub <owner>/);
    const [unknown, missing, badOption] = await Promise.all([
      cli('frobnicate'),
      cli('quota', 'get'),
      cli('files', 'ls', '--owner', 'alice', '--colour'),
    ]);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    expect(missing.code).toBe(64);
    expect(missing.stderr).toContain('missing <owner>');
    expect(missing.stderr).toContain('tusvault quota --help');
    expect(badOption.code).toBe(64);
    expect(badOption.stderr).toContain("Unknown option '--colour'");
  });

  it('reports every configuration problem at once, as the server does (exit 78)', async () => {
    const run = await tusvault(['check'], { ...env, PORT: 'abc', STORAGE: 'tape', AUTH_JWT_SECRET: 'short' });
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('Invalid configuration:');
    expect(run.stderr).toContain('PORT="abc": expected a whole number from 0 to 65535');
    expect(run.stderr).toContain('STORAGE="tape": expected one of file, s3');
  });

  it('mints tokens the server accepts; --admin opens the admin API', async () => {
    const owner = `cli-${randomBytes(3).toString('hex')}`;
    const user = await tokenFor('--sub', owner, '--ttl', '10m');
    const me = await fetch(`${server.url}/api/me/quota`, { headers: user });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { ownerId: string }).ownerId).toBe(owner);
    expect((await fetch(`${server.url}/api/admin/analytics/queue`, { headers: user })).status).toBe(403);
    const admin = await tokenFor('--sub', 'ops', '--admin');
    expect((await fetch(`${server.url}/api/admin/analytics/queue`, { headers: admin })).status).toBe(200);

    const noSecret = await tusvault(['token', '--sub', owner], { ...env, AUTH_MODE: 'none', AUTH_JWT_SECRET: '' });
    expect(noSecret.code).toBe(78);
    expect(noSecret.stderr).toContain('AUTH_JWT_SECRET is not set');
    expect((await cli('token', '--sub', owner, '--ttl', 'soon')).code).toBe(64);
  });

  it('files ls and files show answer what the files API answers', async () => {
    const owner = `files-${randomBytes(3).toString('hex')}`;
    const headers = await tokenFor('--sub', owner);
    const id = await upload(randomBytes(3000), { endpoint: `${server.url}/files`, filename: 'notes.bin', headers });
    const record = await waitForFinal(server.url, id, { headers });

    const listed = await cli('files', 'ls', '--owner', owner, '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((f) => f.id)).toEqual([id]);
    const table = await cli('files', 'ls', '--owner', owner, '--status', record.status);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+OWNER\s+STATUS\s+KIND\s+SIZE\s+CREATED\s+NAME$/);
    expect(table.stdout).toContain(id);
    expect((await cli('files', 'ls', '--owner', owner, '--status', 'uploading')).stdout).toContain(`no files for ${owner} with status uploading`);
    expect((await cli('files', 'ls', '--owner', owner, '--status', 'nope')).code).toBe(64);
    expect((await cli('files', 'ls', '--owner', 'no/slashes')).code).toBe(64);

    // Without --owner: every owner's files, newest first, as the database holds them.
    const other = `files-${randomBytes(3).toString('hex')}`;
    const otherHeaders = await tokenFor('--sub', other);
    const otherId = await upload(randomBytes(2000), { endpoint: `${server.url}/files`, filename: 'other.bin', headers: otherHeaders });
    await waitForFinal(server.url, otherId, { headers: otherHeaders });
    const everyone = await cli('files', 'ls', '--json', '--limit', '1000');
    expect(everyone.code, everyone.stderr).toBe(0);
    const expected = await db.sql<{ id: string; owner_id: string }[]>`
      select id, owner_id from uploads where status <> 'deleted' and coalesce(upload_concat, '') <> 'partial' order by created_at desc, id desc`;
    expect((JSON.parse(everyone.stdout) as Array<{ id: string; ownerId: string }>).map((f) => [f.id, f.ownerId])).toEqual(expected.map((r) => [r.id, r.owner_id]));
    const both = await cli('files', 'ls', '--status', 'ready');
    expect(both.stdout).toMatch(new RegExp(`^${otherId}\\s+${other}\\s+ready`, 'm'));
    expect(both.stdout).toMatch(new RegExp(`^${id}\\s+${owner}\\s+ready`, 'm'));
    expect((await cli('files', 'ls', '--status', 'uploading', '--kind', 'xsq')).stdout).toContain('no files with status uploading of kind xsq');

    const shown = await cli('files', 'show', id, '--json');
    expect(shown.code, shown.stderr).toBe(0);
    const api = await (await fetch(`${server.url}/api/files/${id}`, { headers })).json();
    expect(JSON.parse(shown.stdout)).toEqual(api);
    expect((await cli('files', 'show', id)).stdout).toContain(`name        notes.bin`);
    const missing = await cli('files', 'show', 'f'.repeat(32));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no file with id');
    expect((await cli('files', 'show', '../etc')).code).toBe(64);
  });

  it('quota set changes what GET /api/me/quota answers; "default" returns a limit to the default', async () => {
    const owner = `quota-${randomBytes(3).toString('hex')}`;
    const headers = await tokenFor('--sub', owner);
    const set = await cli('quota', 'set', owner, '--max-bytes', '1GiB', '--max-files', '10', '--json');
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ ownerId: owner, maxBytes: 2 ** 30, maxFiles: 10 });
    const me = (await (await fetch(`${server.url}/api/me/quota`, { headers })).json()) as Record<string, unknown>;
    expect(me).toMatchObject({ maxBytes: 2 ** 30, maxFiles: 10 });

    const got = await cli('quota', 'get', owner);
    expect(got.stdout).toContain('stored           0 B of 1 GiB');
    expect(got.stdout).toContain('files            0 of 10');

    expect((await cli('quota', 'set', owner, '--max-bytes', 'default')).code).toBe(0);
    expect(((await (await fetch(`${server.url}/api/me/quota`, { headers })).json()) as { maxBytes: unknown }).maxBytes).toBeNull();
    const [audited] = await db.sql<{ n: number }[]>`select count(*)::int as n from audit_log where owner_id = ${owner}`;
    expect(audited!.n).toBe(2);

    const bad = await cli('quota', 'set', owner, '--max-bytes', 'lots');
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('--max-bytes="lots": expected a size');
    expect((await cli('quota', 'set', owner)).code).toBe(64);
    expect((await cli('quota', 'get', 'no/slashes')).code).toBe(64);
  });

  it('lifecycle --dry-run lists what a run then removes', async () => {
    const owner = `life-${randomBytes(3).toString('hex')}`;
    const headers = await tokenFor('--sub', owner);
    const created = await fetch(`${server.url}/files`, {
      method: 'POST',
      headers: { ...headers, 'Tus-Resumable': '1.0.0', 'Upload-Length': '100', 'Upload-Metadata': `filename ${Buffer.from('old.bin').toString('base64')}` },
    });
    expect(created.status).toBe(201);
    const id = created.headers.get('location')!.split('/').pop()!;
    await db.sql`update uploads set expires_at = now() - interval '1 hour' where id = ${id}`;

    const dry = await cli('lifecycle', '--dry-run', '--json');
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as { dryRun: boolean; expired: { ids: string[] } };
    expect(plan.dryRun).toBe(true);
    expect(plan.expired.ids).toContain(id);
    const [still] = await db.sql<{ status: string }[]>`select status from uploads where id = ${id}`;
    expect(still!.status).toBe('uploading');
    const text = await cli('lifecycle', '--dry-run');
    expect(text.stdout).toContain('dry run: nothing was changed');
    expect(text.stdout).toMatch(/expired uploads: would remove \d+/);

    // Progress on stderr, the report alone on stdout.
    expect(dry.stderr).toContain('planning the lifecycle sweep (dry run) …');
    expect(dry.stderr).toMatch(/planning the lifecycle sweep \(dry run\): done in \d+\.\d s — \d+ to remove/);
    // A line per category as the sweep finishes it, in the sweep's order, before the summary.
    const phases = dry.stderr.split('\n').filter((line) => /^[a-z ]+: \d+ to (remove|move)/.test(line));
    expect(phases.map((line) => line.split(':')[0])).toEqual([
      'expired uploads',
      'rejected files past retention',
      'infected files past retention',
      'unreferenced blobs',
      'orphaned stored objects',
      'delivered webhook events past retention',
      'storage tier moves',
    ]);
    expect(phases[0]).toMatch(/^expired uploads: [1-9]\d* to remove \(\d[^)]*\) in \d+\.\d s$/);
    expect(dry.stderr.indexOf('expired uploads:')).toBeLessThan(dry.stderr.indexOf('planning the lifecycle sweep (dry run): done'));

    const real = await cli('lifecycle', '--json');
    expect(real.code, real.stderr).toBe(0);
    expect(real.stderr).toMatch(/running the lifecycle sweep: done in \d+\.\d s — \d+ removed/);
    expect(real.stderr).toMatch(/^expired uploads: [1-9]\d* removed \(\d[^)]*\) in \d+\.\d s$/m);
    expect((JSON.parse(real.stdout) as { expired: { ids: string[] } }).expired.ids).toContain(id);
    const [after] = await db.sql<{ status: string }[]>`select status from uploads where id = ${id}`;
    expect(after!.status).toBe('expired');
  });

  it('reconcile reports what it repaired', async () => {
    // A file left in processing with no job to move it on (older than RECONCILE_AFTER): its
    // content is done, so the reconciler's finalize makes it ready again.
    const headers = await tokenFor('--sub', `rec-${randomBytes(3).toString('hex')}`);
    const lost = await upload(randomBytes(500), { endpoint: `${server.url}/files`, filename: 'lost.bin', headers });
    expect((await waitForFinal(server.url, lost, { headers })).status).toBe('ready');
    await db.sql`update uploads set status = 'processing', updated_at = now() - interval '1 hour' where id = ${lost}`;

    const run = await tusvault(['reconcile', '--json'], { ...env, RECONCILE_AFTER: '5m' });
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { requeued: string[] }).requeued).toContain(lost);
    expect(run.stderr).toMatch(/^processing re-enqueued: [1-9]\d* in \d+\.\d s$/m);
    const [after] = await db.sql<{ status: string }[]>`select status from uploads where id = ${lost}`;
    expect(after!.status).toBe('ready');
    expect(Object.keys(JSON.parse(run.stdout) as object).sort()).toEqual(['finished', 'requeued', 'unlockedWorkers']);
    expect(run.stderr).toMatch(/^reconciling …$/m);
    expect(run.stderr).toMatch(/^reconciling: done in \d+\.\d s — \d+ repaired$/m);
    // A line per pass as it is done.
    expect(run.stderr.split('\n').filter((line) => /^[a-z -]+: \d+ in \d+\.\d s$/.test(line)).map((line) => line.split(':')[0])).toEqual([
      'dead workers unlocked',
      'uploads finished',
      'concatenations re-enqueued',
      'processing re-enqueued',
    ]);
  });

  it('check passes with a working setup and fails (exit 1) naming what is unreachable', async () => {
    const ok = await cli('check');
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ok\s+config/m);
    expect(ok.stdout).toMatch(/^ok\s+database\s+postgres:\/\/.*PostgreSQL \d+/m);
    expect(ok.stdout).toMatch(/^ok\s+storage\s+files under /m);
    expect(ok.stdout).toMatch(/^skip\s+clamd\s+not configured/m);

    const closed = await freePort();
    const down = await tusvault(['check'], { ...env, DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/none`, CLAMAV_HOST: '127.0.0.1', CLAMAV_PORT: String(closed) });
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/^FAIL\s+database\s+/m);
    expect(down.stdout).toMatch(/^FAIL\s+clamd\s+/m);
    expect(down.stdout).toMatch(/^ok\s+storage/m);
  });
});
