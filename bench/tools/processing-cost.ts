// CPU per small upload of processing alone: uploads are received by a ROLE=api server (no
// worker), then a ROLE=worker process starts and works through the backlog; its CPU and
// PostgreSQL's are measured from its start to the last file ready. With --cpu-prof the worker
// writes a profile (summarise it with cpuprofile-summary.ts).
//   node --import tsx bench/tools/processing-cost.ts [count=1500] [--cpu-prof] [KEY=VALUE ...]
import { randomBytes } from 'node:crypto';
import { tusUploadMany } from '../clients.js';
import { ROOT, cpuSecondsOf, toolArgs, createDatabase, postgresCpuByPid, postgresCpuSince, freePort, removeDir, spawnNode, tempDir, allProcessed, ourServerEnv } from '../support.js';

const { env: extra, positional } = toolArgs();
const count = Number(positional.find((a) => /^\d+$/.test(a)) ?? 1500);
const profile = positional.includes('--cpu-prof');

const db = await createDatabase();
const dataDir = await tempDir('processing');
const profDir = await tempDir('processing-prof');
const env = { ...ourServerEnv(db.url, dataDir), ...extra };
const api = await spawnNode({ name: 'api', script: 'src/main.ts', cwd: ROOT, env: { ...env, ROLE: 'api' }, port: await freePort(), readyPath: '/healthz' });
try {
  const result = await tusUploadMany(`${api.url}/files`, Array.from({ length: count }, () => randomBytes(64 * 1024)), 32);
  if (result.failures > 0) throw new Error(`${result.failures} uploads failed: ${result.errors[0]}`);
  const pg0 = await postgresCpuByPid();
  const t0 = performance.now();
  const worker = await spawnNode({
    name: 'worker',
    script: 'src/main.ts',
    cwd: ROOT,
    env: { ...env, ROLE: 'worker' },
    port: await freePort(),
    readyPath: '/healthz',
    ...(profile ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] } : {}),
  });
  try {
    await allProcessed(db, 'the backlog to be processed', 600_000, 50);
    const seconds = (performance.now() - t0) / 1000;
    const [workerCpu, pgCpu] = [await cpuSecondsOf(worker.pid), postgresCpuSince(pg0, await postgresCpuByPid())];
    const ms = (s: number) => ((s * 1000) / count).toFixed(2);
    console.log(`${count} uploads processed in ${seconds.toFixed(1)} s (${(count / seconds).toFixed(0)}/s, worker start included)`);
    console.log(`CPU per upload: worker ${ms(workerCpu)} ms (start-up included), PostgreSQL ${ms(pgCpu)} ms`);
  } finally {
    await worker.stop();
  }
  if (profile) console.log(`profile in ${profDir}`);
} finally {
  await api.stop();
  await db.drop();
  await removeDir(dataDir);
}
