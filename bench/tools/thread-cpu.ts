// Where a server's CPU goes during a large upload, by thread and user/system time: the main
// thread (JavaScript), V8's helper threads (concurrent marking: garbage collection) and libuv's
// pool (file writes, fsyncs: mostly kernel time). Node names every thread "node", so they are
// told apart by creation order (#2-#5 V8's helpers, #7-#10 libuv's pool on Node 20; ours' hashing
// thread, src/storage/hash-thread.ts, starts with the first large upload: #11 or later).
// Runs raw-sink+fsync, bare @tus/server and ours (built JavaScript) in turn:
//   node --import tsx bench/tools/thread-cpu.ts [MiB=1024] [chunk MiB=8, 0 = one PATCH] [runs=2]
//        [--client tus|curl] [--trace-gc] [--root DIR] [--compare-root DIR] [KEY=VALUE ...]
// --trace-gc: scavenges and mark-compacts per upload. --root: ours from another checkout;
// --compare-root adds "compare", ours from another checkout. KEY=VALUE: our server's environment.
// Env: SUBJECTS=ours,bare-tus,... picks the servers; IDLE_MS lets them sit idle first (in the
// full benchmark a server idles while the others are measured; V8 shrinks an idle heap);
// CONCURRENT=N sends N copies at once (CPU per GiB over all of them, MiB/s of all together).
import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { curlUpload, splitFile, tusUploadFile, type UploadResult } from '../clients.js';
import { MiB, ROOT, allProcessed, buildOnce, cpuTimesOfStat, createDatabase, freePort, ourServerEnv, randomFile, removeDir, spawnNode, syncDisks, tempDir, type Child } from '../support.js';

const argv = process.argv.slice(2);
let root = ROOT;
let client: 'tus' | 'curl' = 'tus';
let compareRoot: string | undefined;
const nodeArgs: string[] = [];
const positional: string[] = [];
const extra: Record<string, string> = {};
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--root') root = path.resolve(argv[++i]!);
  else if (a === '--compare-root') compareRoot = path.resolve(argv[++i]!);
  else if (a === '--client') client = argv[++i] === 'curl' ? 'curl' : 'tus';
  else if (a === '--trace-gc') nodeArgs.push('--trace-gc');
  else if (a.includes('=')) extra[a.split('=')[0]!] = a.split('=').slice(1).join('=');
  else positional.push(a);
}
const size = Number(positional[0] ?? 1024) * MiB;
const chunk = Number(positional[1] ?? 8) * MiB || Number.POSITIVE_INFINITY;
const runs = Number(positional[2] ?? 2);
const concurrent = Number(process.env.CONCURRENT ?? 1);

type Times = Map<string, { user: number; sys: number }>;

/** user/system seconds per thread. */
async function threadTimes(pid: number): Promise<Times> {
  const out: Times = new Map();
  // Every thread of node is named "node": they are told apart by creation order (main, V8's
  // platform workers, then libuv's pool as it is first used).
  const tids = (await readdir(`/proc/${pid}/task`).catch(() => [] as string[])).map(Number).sort((a, b) => a - b);
  for (const [index, tid] of tids.entries()) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    out.set(tid === pid ? 'main' : `node#${index}`, cpuTimesOfStat(stat));
  }
  return out;
}

function diff(after: Times, before: Times): Times {
  const out: Times = new Map();
  for (const [k, v] of after) {
    const b = before.get(k) ?? { user: 0, sys: 0 };
    out.set(k, { user: v.user - b.user, sys: v.sys - b.sys });
  }
  return out;
}

const work = await tempDir('thread-cpu');
const input = await randomFile(path.join(work, 'input.bin'), size);
const piece = Number.isFinite(chunk) ? chunk : size;
const pieces = client === 'curl' ? await splitFile(input, piece, path.join(work, 'pieces')) : [];
const pieceSizes = pieces.map((_, i) => Math.min(piece, size - i * piece));
const upload = (endpoint: string): Promise<UploadResult> =>
  client === 'curl' ? curlUpload(endpoint, size, pieces, pieceSizes) : tusUploadFile(endpoint, input, chunk);

/** Garbage collections a child reported with --trace-gc since the last call. */
function gcCounter(child: Child): () => string {
  const counts = new Map<string, number>();
  child.process.stdout!.on('data', (chunk: Buffer) => {
    for (const m of chunk.toString().matchAll(/ms: (Scavenge|Mark-Compact|Mark-Compact \(reduce\)|Minor Mark-Sweep)/g)) {
      counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
    }
  });
  return () => {
    const text = [...counts].map(([k, v]) => `${k} ${v}`).join(', ');
    counts.clear();
    return text;
  };
}

interface Subject {
  name: string;
  child: Child;
  gcs: () => string;
  dataDir: string;
  settle(): Promise<void>;
  stop(): Promise<void>;
}

async function start(name: string): Promise<Subject> {
  const dataDir = await tempDir(name);
  const port = await freePort();
  if (name === 'ours' || name === 'compare') {
    const db = await createDatabase();
    const child = await spawnNode({
      name,
      script: 'src/main.ts',
      cwd: name === 'ours' ? root : compareRoot!,
      build: await buildOnce(name === 'ours' ? root : compareRoot!),
      env: { ...ourServerEnv(db.url, dataDir), ...extra },
      port,
      readyPath: '/healthz',
      nodeArgs,
    });
    return {
      name,
      child,
      gcs: gcCounter(child),
      dataDir,
      settle: () => allProcessed(db, 'processing'),
      stop: async () => {
        await child.stop();
        await db.drop();
        await removeDir(dataDir);
      },
    };
  }
  const script = name === 'bare-tus' ? 'bench/baselines/bare-tus.ts' : 'bench/baselines/raw-sink.ts';
  const child = await spawnNode({
    name,
    script: path.join(ROOT, script),
    build: await buildOnce(ROOT),
    env: { STORE: 'file', DIR: dataDir, FSYNC: '1' },
    port,
    readyPath: '/files',
    nodeArgs,
  });
  return { name, child, gcs: gcCounter(child), dataDir, settle: async () => {}, stop: async () => (await child.stop(), removeDir(dataDir)) };
}

const names = (process.env.SUBJECTS ?? `raw-sink+fsync,bare-tus,ours${compareRoot ? ',compare' : ''}`).split(',');
const subjects: Subject[] = [];
for (const name of names) subjects.push(await start(name));
try {
  console.log(`${concurrent > 1 ? `${concurrent} × ` : ''}${size / MiB} MiB, ${Number.isFinite(chunk) ? `${chunk / MiB} MiB chunks` : 'one PATCH'}, ${client}; CPU seconds per GiB by thread (user/sys)`);
  // IDLE_MS: let the servers sit idle first (V8's memory reducer shrinks an idle heap).
  await new Promise((r) => setTimeout(r, Number(process.env.IDLE_MS ?? 0)));
  for (let run = 0; run < runs; run++) {
    for (const subject of subjects) {
      syncDisks();
      subject.gcs();
      const before = await threadTimes(subject.child.pid);
      const results = await Promise.all(Array.from({ length: concurrent }, () => upload(`${subject.child.url}/files`)));
      const result = { ms: Math.max(...results.map((r) => r.ms)) };
      const spent = diff(await threadTimes(subject.child.pid), before);
      const perGiB = (s: number) => s / ((concurrent * size) / 1024 / MiB);
      const parts = [...spent]
        .filter(([, t]) => t.user + t.sys > 0)
        .sort((a, b) => b[1].user + b[1].sys - (a[1].user + a[1].sys))
        .map(([k, t]) => `${k} ${perGiB(t.user).toFixed(2)}/${perGiB(t.sys).toFixed(2)}`);
      const total = [...spent.values()].reduce((s, t) => s + t.user + t.sys, 0);
      console.log(`${subject.name.padEnd(15)} ${((concurrent * size) / MiB / (result.ms / 1000)).toFixed(0).padStart(4)} MiB/s  total ${perGiB(total).toFixed(2).padStart(6)}  ${parts.join('  ')}`);
      if (nodeArgs.length) console.log(`${''.padEnd(15)} GC: ${subject.gcs() || 'none'}`);
      await subject.settle();
      // The baselines keep every upload; ours keeps its files (they are records now).
      if (subject.name !== 'ours' && subject.name !== 'compare') {
        for (const entry of await readdir(subject.dataDir)) await rm(path.join(subject.dataDir, entry), { recursive: true, force: true });
      }
    }
  }
} finally {
  for (const s of subjects) await s.stop();
  await removeDir(work);
}
