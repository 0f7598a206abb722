// CPU per small upload while receiving (no processing): bare @tus/server vs our server (ROLE=api),
// server and PostgreSQL separately, with the client in this process. Where the small-files gap is.
//   node --import tsx bench/tools/receive-cost.ts [count=1000] [KEY=VALUE ...]   (env for ours)
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { tusUploadMany } from '../clients.js';
import { ROOT, cpuSecondsOf, toolArgs, createDatabase, postgresCpuByPid, postgresCpuSince, freePort, removeDir, spawnNode, tempDir, ourServerEnv } from '../support.js';

const { env: extra, positional } = toolArgs();
const count = Number(positional[0] ?? 1000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);

async function measure(name: string, endpoint: string, pid: number) {
  const bodies = () => Array.from({ length: count }, () => randomBytes(64 * 1024));
  await tusUploadMany(endpoint, bodies().slice(0, 64), 32); // warm-up
  const [node0, pg0, self0] = [await cpuSecondsOf(pid), await postgresCpuByPid(), process.cpuUsage()];
  const result = await tusUploadMany(endpoint, bodies(), CONCURRENCY);
  const self = process.cpuUsage(self0);
  const ms = (seconds: number) => ((seconds * 1000) / count).toFixed(2);
  console.log(
    `${name.padEnd(5)} ${(count / (result.totalMs / 1000)).toFixed(0)}/s, failures ${result.failures}; CPU ms per upload: ` +
      `server ${ms((await cpuSecondsOf(pid)) - node0)}, postgres ${ms(postgresCpuSince(pg0, await postgresCpuByPid()))}, client ${ms((self.user + self.system) / 1e6)}`,
  );
}

const bareDir = await tempDir('bare');
const bare = await spawnNode({ name: 'bare', script: path.join(ROOT, 'bench/baselines/bare-tus.ts'), env: { STORE: 'file', DIR: bareDir }, port: await freePort(), readyPath: '/files' });
const db = await createDatabase();
const dataDir = await tempDir('receive');
const ours = await spawnNode({
  name: 'ours',
  script: 'src/main.ts',
  cwd: ROOT,
  env: { ...ourServerEnv(db.url, dataDir), ROLE: 'api', ...extra },
  port: await freePort(),
  readyPath: '/healthz',
});
try {
  for (let run = 0; run < 2; run++) {
    await measure('bare', `${bare.url}/files`, bare.pid);
    await measure('ours', `${ours.url}/files`, ours.pid);
  }
} finally {
  await Promise.all([bare.stop(), ours.stop()]);
  await db.drop();
  await Promise.all([removeDir(bareDir), removeDir(dataDir)]);
}
