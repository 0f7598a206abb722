import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from '../src/db/client.js';
import { uploadRecords } from '../src/db/uploads.js';
const database = connect('postgres://postgres@127.0.0.1:5432/pgb', { max: 20 });
const records = uploadRecords(database.db, { quota: { maxBytes: null, maxFiles: null, maxFileSize: null, monthlyBytes: null }, maxAttempts: 3 });
function pgCpu() { let t = 0; for (const p of readdirSync('/proc')) { if (!/^\d+$/.test(p)) continue; try { if (!readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('postgres')) continue; const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' '); t += Number(f[11]) + Number(f[12]); } catch {} } return t * 10; }
const count = Number(process.argv[2] ?? 3000);
let n = 0;
async function loop(k: number) {
  while (n++ < k) {
    const id = randomBytes(16).toString('hex');
    await records.create({ id, ownerId: 'anonymous', filename: 'x.bin', mimeType: null, kind: 'other', size: 65536, tusMetadata: { filename: 'x.bin' }, expiresAt: new Date(Date.now() + 86400000) });
    await new Promise((r) => setTimeout(r, 1));
    await records.finish(id, 65536);
  }
}
if (process.env.LISTEN) await database.sql.listen('upload_events', () => {});
await Promise.all(Array.from({ length: 32 }, () => loop(500)));
const c0 = pgCpu(); const t0 = Date.now(); const u0 = process.cpuUsage(); n = 0;
await Promise.all(Array.from({ length: 32 }, () => loop(count)));
const u = process.cpuUsage(u0);
console.log(`${process.argv[3] ?? ''}: ${(count / (Date.now() - t0) * 1000).toFixed(0)}/s, PG CPU ${((pgCpu() - c0) / count).toFixed(3)} ms, node ${((u.user + u.system) / 1000 / count).toFixed(3)} ms per upload`);
await database.close();
