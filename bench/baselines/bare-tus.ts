// Bare @tus/server with @tus/file-store or @tus/s3-store: no hooks, no database, no locker but
// the default in-memory one, served by @tus/server's own `listen` (node:http → srvx NodeRequest
// → handleWeb). The comparison our server must beat.
//   env: PORT, STORE=file|s3, DIR (file), S3_BUCKET, S3_ENDPOINT (s3, path style, test creds),
//        S3_PART_SIZE; and, for the investigation only (bench --only investigate), knobs that
//        switch on the fast paths of bench/experiments/fast-path.ts:
//        BODY=web|node, WRITER=stock|writestream|sink, DURABILITY=none|end|incremental, HWM=bytes;
//        KV=memory keeps the tus info in memory instead of `<id>.json` (what one file less costs)
import { FileStore } from '@tus/file-store';
import { MemoryKvStore } from '@tus/utils';
import { S3Store } from '@tus/s3-store';
import { Server, type DataStore } from '@tus/server';
import { createFastFileStore, feedNodeRequestsDirectly, type Durability } from '../experiments/fast-path.js';

const env = process.env;
let datastore: DataStore;
if (env.STORE === 's3') {
  datastore = new S3Store({
    partSize: Number(env.S3_PART_SIZE ?? 8 * 2 ** 20),
    s3ClientConfig: {
      bucket: env.S3_BUCKET!,
      endpoint: env.S3_ENDPOINT,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    },
  });
} else {
  const writer = (env.WRITER ?? 'stock') as 'stock' | 'writestream' | 'sink';
  const durability = (env.DURABILITY ?? 'none') as Durability;
  datastore =
    writer === 'stock' && durability === 'none'
      ? new FileStore({ directory: env.DIR!, ...(env.KV === 'memory' ? { configstore: new MemoryKvStore() } : {}) })
      : createFastFileStore({ directory: env.DIR!, writer, durability, highWaterMark: Number(env.HWM ?? 1 << 20) });
}

const server = new Server({ path: '/files', datastore, maxSize: 8 * 2 ** 30 });
if (env.BODY === 'node') feedNodeRequestsDirectly(server);
const http = server.listen({ host: '127.0.0.1', port: Number(env.PORT) }, () => process.stdout.write('listening\n'));
http.keepAliveTimeout = 60_000;
process.on('SIGTERM', () => http.close(() => process.exit(0)));
