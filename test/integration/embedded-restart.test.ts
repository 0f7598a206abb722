// The zero-config start survives a crash loop: the whole process group (server and its embedded
// PostgreSQL) is SIGKILLed and started again at once, several times. The postmaster.pid left behind
// names a pid that is dead, or one kill(pid, 0) still sees: a zombie nobody reaps yet (whether the
// killed postmaster is one at that moment is a race, so one round makes it certain) or, after a
// reboot, an unrelated process. The server must not trust it, start a fresh postmaster on the same
// data, and keep every upload made before. A postmaster that survived and answers is still reused.
import { spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../support/ports.js';
import { ROOT } from '../support/server.js';

interface Started {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<unknown>;
}

const children: ChildProcess[] = [];
const helpers: ChildProcess[] = [];
const dataDirs: string[] = [];

/** A live process unrelated to postgres, as a pid reused after a reboot would be. */
function unrelatedPid(): number {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  helpers.push(child);
  return child.pid!;
}

/**
 * A zombie: the shell becomes `sleep 60` (exec), which never reaps its child; the child exits a
 * moment later, after the exec (exiting before it, the shell could still reap it).
 */
async function zombiePid(): Promise<number> {
  const holder = spawn('sh', ['-c', 'sleep 1 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
  helpers.push(holder);
  const echoed = await new Promise<string>((resolve) => holder.stdout!.once('data', (c: Buffer) => resolve(c.toString())));
  const pid = Number(echoed);
  await waitFor(async () => /\) Z/.test(await readFile(`/proc/${pid}/stat`, 'utf8')), { what: 'a zombie' });
  process.kill(pid, 0); // kill(pid, 0) sees it
  return pid;
}

/** Point the left-over postmaster.pid at another pid, as the crash (or a reboot) can leave it. */
async function pidFileNames(dataDir: string, pid: number): Promise<void> {
  const file = path.join(dataDir, 'postgres', 'postmaster.pid');
  const lines = (await readFile(file, 'utf8')).split('\n');
  lines[0] = String(pid);
  await writeFile(file, lines.join('\n'));
}

async function freshDataDir(): Promise<string> {
  // As root, postgres runs as the postgres user, which must be able to enter the directory.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-crashloop-'));
  await chmod(dir, 0o755);
  dataDirs.push(dir);
  return dir;
}

async function createUpload(url: string, name: string): Promise<string> {
  const response = await fetch(`${url}/files`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Length': '1024',
      'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')}`,
    },
  });
  expect(response.status).toBe(201);
  return response.headers.get('location')!.split('/').pop()!;
}

async function listedIds(url: string): Promise<string[]> {
  const list = await fetch(`${url}/api/files?limit=100`);
  expect(list.status).toBe(200);
  return ((await list.json()) as { files: Array<{ id: string }> }).files.map((f) => f.id);
}

/** `npm start` as its own process group (detached), so the test can SIGKILL the whole group. */
async function startDetached(dir: string): Promise<Started> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    detached: true,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      DATA_DIR: dir,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      WORKER_CONCURRENCY: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
  child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-200_000)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  const url = `http://127.0.0.1:${port}`;
  await Promise.race([
    waitFor(async () => (await fetch(`${url}/readyz`).catch(() => null))?.status === 200, {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: 'readyz',
    }),
    exited.then((code) => {
      throw new Error(`server exited (${String(code)}) during start:\n${out}`);
    }),
  ]);
  return { child, url, output: () => out, exited };
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

afterAll(async () => {
  for (const child of children) killGroup(child);
  for (const helper of helpers) helper.kill('SIGKILL');
  await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('embedded PostgreSQL crash loop', () => {
  it('restarts at once after SIGKILL of the group, 3 times, keeping uploads; reuses a postmaster that answers', async () => {
    const dataDir = await freshDataDir();
    const created: string[] = [];
    const restarts: string[] = [];

    let server = await startDetached(dataDir);
    for (let round = 0; ; round++) {
      // Real requests through the database: create an upload, then find every earlier one listed.
      created.push(await createUpload(server.url, `round-${round}.png`));
      const ids = await listedIds(server.url);
      for (const earlier of created) expect(ids, `round ${round}`).toContain(earlier);
      if (round === 3) break;

      // Kill everything in the group (node and every postgres process) and start again, no wait.
      // The pid file: as left (round 0), naming a zombie (1), naming an unrelated live process (2).
      killGroup(server.child);
      await server.exited;
      if (round === 1) await pidFileNames(dataDir, await zombiePid());
      if (round === 2) await pidFileNames(dataDir, unrelatedPid());
      server = await startDetached(dataDir);
      restarts.push(server.output());
    }
    // Each restart saw the stale pid file for what it was and started its own postmaster.
    for (const output of restarts) {
      expect(output).toContain('removed the stale postmaster.pid');
      expect(output).toContain('embedded PostgreSQL started');
    }

    // Only the node process dies: its postmaster (same group, not signalled) keeps running and
    // answers, so the next start uses it.
    const survivor = server;
    survivor.child.kill('SIGKILL');
    await survivor.exited;
    server = await startDetached(dataDir);
    expect(server.output()).toContain('reusing the embedded PostgreSQL left running by an earlier process');
    expect(await listedIds(server.url)).toEqual(expect.arrayContaining(created));
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    // That postmaster was not the last server's to stop: a fast shutdown of the old group, so it
    // removes its shared memory; it removes postmaster.pid as its last act.
    process.kill(-survivor.child.pid!, 'SIGINT');
    const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
    await waitFor(() => access(pidFile).then(() => false, () => true), {
      timeoutMs: 10_000,
      what: 'the postmaster to stop',
    });
  }, 120_000);
});
