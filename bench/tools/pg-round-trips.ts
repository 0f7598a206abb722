// Round trips and statements per small upload, counted on the wire: a proxy between our server and
// PostgreSQL reads the frontend's messages (Sync ends an extended-protocol round trip, Query is a
// simple one) and names each executed statement by the text its Parse carried.
//   node --import tsx bench/tools/pg-round-trips.ts [count=400] [--root DIR] [KEY=VALUE ...]
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { tusUploadMany } from '../clients.js';
import { allProcessed, toolArgs, createDatabase, freePort, ourServerEnv, removeDir, spawnNode, tempDir } from '../support.js';

const { root, env: extra, positional } = toolArgs();
const count = Number(positional[0] ?? 400);

let counting = false;
const totals = { roundTrips: 0, simple: 0, executes: 0 };
const byStatement = new Map<string, number>();

/** Reads one connection's frontend messages as they pass (the first is the untyped startup packet). */
function watch(client: Socket): void {
  let pending = Buffer.alloc(0);
  let started = false;
  const named = new Map<string, string>();
  let unnamed = '';
  let lastBound = '';
  client.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (!started) {
        if (pending.length < 4) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        pending = pending.subarray(length);
        started = true;
        continue;
      }
      if (pending.length < 5) return;
      const length = pending.readInt32BE(1);
      if (pending.length < 1 + length) return;
      const type = String.fromCharCode(pending[0]!);
      const body = pending.subarray(5, 1 + length);
      pending = pending.subarray(1 + length);
      if (type === 'P') {
        const nameEnd = body.indexOf(0);
        const name = body.subarray(0, nameEnd).toString();
        const text = body.subarray(nameEnd + 1, body.indexOf(0, nameEnd + 1)).toString();
        if (name) named.set(name, text);
        else unnamed = text;
      } else if (type === 'B') {
        const portalEnd = body.indexOf(0);
        const name = body.subarray(portalEnd + 1, body.indexOf(0, portalEnd + 1)).toString();
        lastBound = name ? (named.get(name) ?? name) : unnamed;
      } else if (type === 'E' && counting) {
        totals.executes += 1;
        const key = lastBound.replace(/\s+/g, ' ').slice(0, 110);
        byStatement.set(key, (byStatement.get(key) ?? 0) + 1);
      } else if (type === 'S' && counting) {
        totals.roundTrips += 1;
      } else if (type === 'Q' && counting) {
        totals.simple += 1;
        totals.roundTrips += 1;
        const key = body.toString().replace(/\s+/g, ' ').slice(0, 110);
        byStatement.set(key, (byStatement.get(key) ?? 0) + 1);
      }
    }
  });
}

const target = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
const proxy = createServer((client) => {
  const upstream = connect(Number(target.port || 5432), target.hostname);
  watch(client);
  client.pipe(upstream);
  upstream.pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
  client.on('close', end);
  upstream.on('close', end);
});
const proxyPort = await freePort();
await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));

const db = await createDatabase();
const viaProxy = new URL(db.url);
viaProxy.host = `127.0.0.1:${proxyPort}`;
const dataDir = await tempDir('roundtrips');
const child = await spawnNode({
  name: 'ours',
  script: 'src/main.ts',
  cwd: root,
  env: { ...ourServerEnv(viaProxy.toString(), dataDir), ...extra },
  port: await freePort(),
  readyPath: '/healthz',
});
try {
  await tusUploadMany(`${child.url}/files`, Array.from({ length: 64 }, () => randomBytes(64 * 1024)), 32); // warm-up
  if (extra.ROLE !== 'api') await allProcessed(db, 'processing');
  counting = true;
  const result = await tusUploadMany(`${child.url}/files`, Array.from({ length: count }, () => randomBytes(64 * 1024)), 32);
  if (extra.ROLE !== 'api') await allProcessed(db, 'processing');
  // Jobs finishing just after the last file is ready (previews, bookkeeping) are counted too.
  await new Promise((r) => setTimeout(r, 1000));
  counting = false;
  const per = (n: number) => (n / count).toFixed(2);
  console.log(`${count} uploads, ${result.failures} failed; per upload: ${per(totals.roundTrips)} round trips, ${per(totals.executes + totals.simple)} statements`);
  for (const [text, n] of [...byStatement].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${per(n).padStart(7)}  ${text}`);
} finally {
  await child.stop();
  await db.drop();
  await removeDir(dataDir);
  proxy.close();
}
