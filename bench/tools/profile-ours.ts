// CPU profile of our server (`node --cpu-prof`) under one workload, summarised:
//   node --import tsx bench/tools/profile-ours.ts small [count=1000] [--root DIR] [KEY=VALUE ...]
//   node --import tsx bench/tools/profile-ours.ts patch  [MiB=1024] [chunk MiB=0 (one PATCH)] [--root DIR] [KEY=VALUE ...]
//   (ROLE=api profiles the request path alone: nothing is processed, so nothing is waited for)
// KEY=VALUE pairs go to the server's environment; --root runs src/main.ts of another checkout.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { tusUploadFile, tusUploadMany } from '../clients.js';
import { MiB, ROOT, cpuSecondsOf, toolArgs, createDatabase, freePort, randomFile, removeDir, spawnNode, tempDir, allProcessed, ourServerEnv } from '../support.js';

const { root, env: extra, positional: [mode, ...positional] } = toolArgs();
if (mode !== 'small' && mode !== 'patch') throw new Error('usage: profile-ours.ts small|patch ...');

const db = await createDatabase();
const dataDir = await tempDir('prof');
const profDir = await tempDir('cpuprof');
const child = await spawnNode({
  name: 'ours',
  script: 'src/main.ts',
  cwd: root,
  nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
  env: { ...ourServerEnv(db.url, dataDir), ...extra },
  port: await freePort(),
  readyPath: '/healthz',
});
// A server without a worker (ROLE=api) leaves its uploads `processing`: nothing to wait for then.
const settled = async () => (extra.ROLE === 'api' ? undefined : allProcessed(db, 'processing'));
try {
  const cpu0 = await cpuSecondsOf(child.pid);
  if (mode === 'small') {
    const count = Number(positional[0] ?? 1000);
    const result = await tusUploadMany(`${child.url}/files`, Array.from({ length: count }, () => randomBytes(64 * 1024)), 32);
    const cpu1 = await cpuSecondsOf(child.pid);
    console.log(`${count} uploads: ${(count / (result.totalMs / 1000)).toFixed(0)}/s, failures ${result.failures}${result.errors.length ? `\n  ${result.errors.join('\n  ')}` : ''}, server CPU while receiving ${(cpu1 - cpu0).toFixed(2)} s`);
    await settled();
  } else {
    const size = Number(positional[0] ?? 1024) * MiB;
    const chunk = Number(positional[1] ?? 0) * MiB || Number.POSITIVE_INFINITY;
    const file = await randomFile(path.join(dataDir, 'input.bin'), size);
    const result = await tusUploadFile(`${child.url}/files`, file, chunk);
    const cpu1 = await cpuSecondsOf(child.pid);
    console.log(`${size / MiB} MiB: ${(size / MiB / (result.ms / 1000)).toFixed(0)} MiB/s, server CPU while receiving ${(cpu1 - cpu0).toFixed(2)} s`);
    await settled();
  }
  console.log(`server CPU in total (incl. processing) ${((await cpuSecondsOf(child.pid)) - cpu0).toFixed(2)} s`);
} finally {
  await child.stop();
  await db.drop();
  await removeDir(dataDir);
}
const file = path.join(profDir, (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'))!);
process.stdout.write(execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/tools/cpuprofile-summary.ts'), file, '30'], { encoding: 'utf8' }));
console.log(`profile: ${file}`);
