// Where the memory benchmark's peak RSS goes: runs its scenario (receive A with tus-js-client in
// one PATCH; receive B while A is processed) against a built server from ROOT or --root DIR,
// with a preload that samples process.memoryUsage() every 100 ms; prints the samples' maxima and
// the sample at the RSS peak. Extra node flags after --node (e.g. --trace-gc); with them or with
// --output, the server's output is printed too.
//   node --import tsx bench/tools/memory-trace.ts [--root DIR] [--size MiB] [--env K=V]... [--timeline] [--output] [--node FLAGS...]
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { tusUploadFile } from '../clients.js';
import { BENCH_DIR, MiB, ROOT, buildOnce, createDatabase, freePort, memoryOf, randomFile, spawnNode, tempDir, waitFor, ourServerEnv } from '../support.js';

const args = process.argv.slice(2);
const at = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
const root = path.resolve(at('--root') ?? ROOT);
const size = Number(at('--size') ?? 2048) * MiB;
const extraEnv = Object.fromEntries(args.flatMap((a, i) => (args[i - 1] === '--env' ? [[a.split('=')[0]!, a.slice(a.indexOf('=') + 1)]] : [])));
const nodeArgs = args.includes('--node') ? args.slice(args.indexOf('--node') + 1) : [];
const preload = path.join(BENCH_DIR, 'tools', 'memlog-preload.mjs');

// Piped into head, a closed stdout must not end this before it removes its two files.
process.stdout.on('error', () => {});
const work = await tempDir('memtrace');
const a = await randomFile(path.join(work, 'a.bin'), size);
const b = await randomFile(path.join(work, 'b.bin'), size);
const db = await createDatabase();
const log = path.join(work, 'mem.jsonl');
const spawnedAt = Date.now();
const server = await spawnNode({
  name: 'ours',
  script: 'src/main.ts',
  cwd: root,
  build: await buildOnce(root),
  nodeArgs: ['--import', preload, ...nodeArgs],
  env: { ...ourServerEnv(db.url, path.join(work, 'data')), MEMLOG: log, ...extraEnv },
  port: await freePort(),
  readyPath: '/healthz',
});
const ready = async (url: string) => {
  const id = new URL(url).pathname.split('/').pop()!;
  await waitFor(async () => (await db.sql`select 1 from uploads where id = ${id} and status = 'ready'`).length > 0, 'ready', 600_000, 20);
};
try {
  const t = () => ((Date.now() - spawnedAt) / 1000).toFixed(1) + 's';
  const phases: string[] = [`start ${t()}`];
  const first = await tusUploadFile(`${server.url}/files`, a);
  phases.push(`A received ${t()}`);
  const processing = ready(first.url);
  const second = await tusUploadFile(`${server.url}/files`, b);
  phases.push(`B received ${t()}`);
  await processing;
  phases.push(`A ready ${t()}`);
  await ready(second.url);
  phases.push(`B ready ${t()}`);
  console.log(phases.join(', '));
  const hwm = (await memoryOf(server.pid))!.hwm / MiB;
  const samples = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const peak = samples.reduce((x, y) => (y.rss! > x.rss! ? y : x));
  const max = Object.fromEntries(Object.keys(peak).map((k) => [k, Math.max(...samples.map((s) => s[k]!))]));
  if (args.includes('--timeline')) console.log(samples.filter((_, i) => i % 5 === 0).map((s) => `${(s.t! / 1000).toFixed(1)}s ${s.rss}/${s.ab}`).join(' '));
  console.log(JSON.stringify({ root, hwm: Math.round(hwm), peakSample: peak, maxima: max }));
  if (nodeArgs.length > 0 || args.includes('--output')) {
    // The server's own lines (e.g. debugging prints), without --trace-gc's, which are only counted.
    const lines = server.output().split('\n');
    const isGc = (line: string) => /Mark-Compact|Scavenge/.test(line);
    console.log(`${lines.filter(isGc).length} GC lines (of the last 50 kB of output); other output:`);
    console.log(lines.filter((line) => !isGc(line)).join('\n').slice(-6000));
  }
} finally {
  await server.stop();
  await db.drop();
  await rm(work, { recursive: true, force: true });
}
