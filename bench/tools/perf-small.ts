// On-CPU profile (Linux `perf record -e cpu-clock`, kernel included) of bare @tus/server and of ours
// (ROLE=api) receiving 64 KiB uploads: unlike --cpu-prof, which samples the main thread's wall
// clock, it counts only CPU time, so a syscall that wakes PostgreSQL is not charged to us.
//   node --import tsx bench/tools/perf-small.ts [count=2000] [bare|ours|both] [KEY=VALUE ...]
//   then: perf report -i /tmp/tusbench-perf-ours.data --no-children --sort dso,sym
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { tusUploadMany } from '../clients.js';
import { ROOT, createDatabase, toolArgs, freePort, removeDir, spawnNode, tempDir, ourServerEnv } from '../support.js';

const { env: extra, positional } = toolArgs();
const count = Number(positional[0] ?? 2000);
const which = positional[1] ?? 'both';
async function measure(name: string, endpoint: string, pid: number) {
  const bodies = () => Array.from({ length: count }, () => randomBytes(64 * 1024));
  await tusUploadMany(endpoint, bodies().slice(0, 200), 32);
  const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '2000', '-g', '-p', String(pid), '-o', `/tmp/tusbench-perf-${name}.data`], { stdio: 'inherit' });
  await new Promise((r) => setTimeout(r, 500));
  const result = await tusUploadMany(endpoint, bodies(), 32);
  perf.kill('SIGINT');
  await new Promise((r) => perf.once('exit', r));
  console.log(`${name} ${(count / (result.totalMs / 1000)).toFixed(0)}/s failures ${result.failures}`);
}
const nodeArgs = ['--perf-basic-prof-only-functions', '--interpreted-frames-native-stack'];
if (which !== 'ours') {
  const bareDir = await tempDir('bare');
  const bare = await spawnNode({ name: 'bare', script: path.join(ROOT, 'bench/baselines/bare-tus.ts'), nodeArgs, env: { STORE: 'file', DIR: bareDir }, port: await freePort(), readyPath: '/files' });
  try { await measure('bare', `${bare.url}/files`, bare.pid); } finally { await bare.stop(); await removeDir(bareDir); }
}
if (which !== 'bare') {
  const db = await createDatabase();
  const dataDir = await tempDir('receive');
  const ours = await spawnNode({ name: 'ours', script: 'src/main.ts', cwd: ROOT, nodeArgs, env: { ...ourServerEnv(db.url, dataDir), ROLE: 'api', ...extra }, port: await freePort(), readyPath: '/healthz' });
  try { await measure('ours', `${ours.url}/files`, ours.pid); } finally { await ours.stop(); await db.drop(); await removeDir(dataDir); }
}
