// What one small upload costs in database work: transactions, rows and PostgreSQL CPU.
//   node --import tsx bench/tools/db-cost.ts [count=400] [--root DIR]
import { randomBytes } from 'node:crypto';
import { tusUploadMany } from '../clients.js';
import { cpuSecondsOf, toolArgs, createDatabase, postgresCpuByPid, postgresCpuSince, freePort, removeDir, spawnNode, tempDir, allProcessed, ourServerEnv } from '../support.js';

const { root, positional } = toolArgs();
const count = Number(positional[0] ?? 400);

const db = await createDatabase();
const dataDir = await tempDir('dbcost');
const child = await spawnNode({
  name: 'ours',
  script: 'src/main.ts',
  cwd: root,
  env: ourServerEnv(db.url, dataDir),
  port: await freePort(),
  readyPath: '/healthz',
});
const name = new URL(db.url).pathname.slice(1);
const stats = async () => {
  const [r] = await db.sql<{ xact: number; ins: number; upd: number; del: number; fetched: number }[]>`
    select xact_commit::float8 as xact, tup_inserted::float8 as ins, tup_updated::float8 as upd, tup_deleted::float8 as del, tup_fetched::float8 as fetched
    from pg_stat_database where datname = ${name}`;
  return r!;
};
const byTable = async () =>
  new Map(
    (
      await db.sql<{ name: string; ins: number; upd: number; del: number }[]>`
        select schemaname || '.' || relname as name, n_tup_ins::float8 as ins, n_tup_upd::float8 as upd, n_tup_del::float8 as del
        from pg_stat_user_tables`
    ).map((r) => [r.name, r]),
  );
try {
  await tusUploadMany(`${child.url}/files`, Array.from({ length: 32 }, () => randomBytes(64 * 1024)), 32); // warm-up
  await new Promise((r) => setTimeout(r, 1500));
  const s0 = await stats();
  const t0s = await byTable();
  const pg0 = await postgresCpuByPid();
  const node0 = await cpuSecondsOf(child.pid);
  const t0 = performance.now();
  const result = await tusUploadMany(`${child.url}/files`, Array.from({ length: count }, () => randomBytes(64 * 1024)), 32);
  await allProcessed(db, 'processing');
  const wall = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 1500)); // pg_stat_database is updated lazily
  const s1 = await stats();
  const t1s = await byTable();
  const per = (k: keyof typeof s0) => ((s1[k] - s0[k]) / count).toFixed(1);
  console.log(`${count} uploads in ${(result.totalMs / 1000).toFixed(1)} s (${(count / (result.totalMs / 1000)).toFixed(0)}/s), all processed after ${wall.toFixed(1)} s`);
  console.log(`per upload: ${per('xact')} commits, ${per('ins')} rows inserted, ${per('upd')} updated, ${per('del')} deleted, ${per('fetched')} fetched`);
  for (const [table, r] of t1s) {
    const before = t0s.get(table) ?? { ins: 0, upd: 0, del: 0 };
    const [ins, upd, del] = [(r.ins - before.ins) / count, (r.upd - before.upd) / count, (r.del - before.del) / count];
    if (ins + upd + del >= 0.05) console.log(`  ${table.padEnd(36)} ${ins.toFixed(2)} inserted, ${upd.toFixed(2)} updated, ${del.toFixed(2)} deleted`);
  }
  console.log(`CPU per upload: server ${(((await cpuSecondsOf(child.pid)) - node0) * 1000 / count).toFixed(1)} ms, PostgreSQL (all backends) ${(postgresCpuSince(pg0, await postgresCpuByPid()) * 1000 / count).toFixed(1)} ms`);
} finally {
  await child.stop();
  await db.drop();
  await removeDir(dataDir);
}
