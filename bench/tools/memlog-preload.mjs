// Preload: samples process.memoryUsage() every 100 ms into $MEMLOG (one JSON line each).
import { appendFileSync } from 'node:fs';
const file = process.env.MEMLOG;
const t0 = Date.now();
const timer = setInterval(() => {
  const m = process.memoryUsage();
  appendFileSync(file, JSON.stringify({ t: Date.now() - t0, rss: m.rss >> 20, heapTotal: m.heapTotal >> 20, heapUsed: m.heapUsed >> 20, external: m.external >> 20, ab: m.arrayBuffers >> 20 }) + '\n');
}, 100);
timer.unref();
