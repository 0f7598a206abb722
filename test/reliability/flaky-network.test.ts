// Mobile clients on a flaky network: every byte goes through a TCP proxy that, in episodes
// between calm spells, cuts connections at random byte counts, stalls all traffic and slows to
// modem speed. Twenty tus-js-client uploads (some in chunks, some whole, some checksummed, some
// over the IETF resumable upload draft) must all end byte-identical with exactly one record each,
// and the server's memory must stay flat.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { FlakyProxy } from '../support/flaky-proxy.js';
import { serverEnv, spawnServer, type ChildServer } from '../support/server.js';
import {
  downloadSha256,
  formatMiB,
  idOf,
  KiB,
  MiB,
  rssOf,
  sampleRss,
  SCALE,
  seededBytes,
  sha256,
  suiteSeed,
  timed,
  trackedUpload,
  type TrackedUpload,
  reportIfDied,
  abortUploads,
} from './support.js';

const { files: FILES, minSize: MIN, maxSize: MAX, parallel: PARALLEL, bytesPerSecond: LINK_SPEED } = SCALE.flaky;
/** The uploads made with the IETF resumable upload draft instead of tus. */
const ietf = (i: number) => i % 5 === 4;

describe('flaky network', () => {
  let db: TestDatabase;
  let server: ChildServer | undefined;
  let proxy: FlakyProxy | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('rel');
  });
  afterAll(async () => {
    await abortUploads();
    reportIfDied('flaky-network server', server);
    await proxy?.close();
    await server?.kill('SIGKILL');
    await db?.drop();
  });

  it(`${FILES} uploads of ${formatMiB(MIN)}–${formatMiB(MAX)} through cuts, stalls and modem speed end byte-identical, memory flat`, async () => {
    const env = await serverEnv({ databaseUrl: db.url, storage: 'file', extra: { RECONCILE_AFTER: '2s' } });
    server = await spawnServer(env);
    proxy = await FlakyProxy.start({ host: '127.0.0.1', port: server.port }, { seed: suiteSeed() });
    const random = proxy.random;
    console.log(`[reliability] flaky-network seed ${proxy.seed}`);

    // Warm the server up (first request compiles routes, loads modules) before the baseline.
    await trackedUpload(seededBytes(256 * KiB, 1), { endpoint: `${server.url}/files`, filename: 'warmup.bin' }).done;
    const baseline = await rssOf(server.process.pid!);

    const sizes = Array.from({ length: FILES }, () => Math.round(MIN + random() * (MAX - MIN)));
    const total = sizes.reduce((a, b) => a + b, 0);
    const rss = sampleRss(server.process.pid!);
    const uploads: TrackedUpload[] = [];
    const chaos = proxy.chaos({ baseBytesPerSecond: LINK_SPEED, calmMs: [300, 1500], cutAfterBytes: [4 * KiB, Math.min(MAX, 2 * MiB)] });

    // A few phones at a time, each going through its queue of files.
    let next = 0;
    const acknowledged = () => uploads.reduce((sum, u) => sum + u.acknowledged, 0);
    const marker = setInterval(() => rss.mark(acknowledged() / total), 100);
    const phone = async () => {
      while (next < FILES) {
        const i = next++;
        const upload = trackedUpload(seededBytes(sizes[i]!, proxy!.seed + 100 + i), {
          endpoint: `${proxy!.url}/files`,
          filename: `mobile-${i}.bin`,
          // Some clients send the whole file in one PATCH, others in chunks, some of them with a
          // checksum per chunk (a checksummed body cut short is dropped whole: it cannot be
          // verified, so only chunked clients checksum on a network like this).
          ...(i % 3 === 0 ? {} : { chunkSize: (i % 3 === 1 ? 512 : 1024) * KiB }),
          // Every fifth phone speaks the IETF draft (as URLSession does), tus-js-client's two
          // modes in turn; the checksum extension is tus's.
          ...(ietf(i) ? { protocol: i % 10 === 4 ? ('ietf-draft-05' as const) : ('ietf-draft-03' as const) } : i % 3 === 2 ? { checksum: 'sha256' as const } : {}),
        });
        uploads[i] = upload;
        await upload.done;
      }
    };
    try {
      await timed('flaky-network: uploads', () => Promise.all(Array.from({ length: PARALLEL }, phone)));
    } finally {
      clearInterval(marker);
      await chaos.stop();
      rss.stop();
    }
    console.log(`[reliability] flaky-network: ${chaos.episodes.length} episodes (${chaos.episodes.join(', ')}); proxy ${JSON.stringify(proxy.stats)}`);
    const recovered = uploads.filter((u) => u.networkErrors > 0).length;
    console.log(`[reliability] flaky-network: ${recovered}/${FILES} uploads recovered from cut connections; ${formatMiB(total)} in total`);
    const ietfRecovered = uploads.filter((u, i) => ietf(i) && u.networkErrors > 0).length;
    console.log(`[reliability] flaky-network: ${ietfRecovered}/${uploads.filter((_, i) => ietf(i)).length} IETF-draft uploads recovered from cut connections`);
    expect(uploads.flatMap((u) => u.regressions), 'acknowledged bytes lost').toEqual([]);
    expect(chaos.episodes.length).toBeGreaterThanOrEqual(5);
    expect(proxy.stats.cuts).toBeGreaterThan(0);
    expect(recovered).toBeGreaterThan(0);

    // Byte-identical, each exactly once.
    const ids = uploads.map((u) => idOf(u.url!));
    const records = await timed('flaky-network: processing', () => Promise.all(ids.map((id) => waitForFinal(server!.url, id, { timeoutMs: 60_000 }))));
    for (const [i, record] of records.entries()) {
      expect(record.status, `upload ${i}`).toBe('ready');
      expect(record.transport, `upload ${i}`).toBe(ietf(i) ? 'ietf' : 'tus');
      expect(record.size).toBe(sizes[i]);
      expect(record.sha256).toBe(sha256(uploads[i]!.data));
      expect((await downloadSha256(server.url, ids[i]!)).sha256).toBe(sha256(uploads[i]!.data));
    }

    // No duplicates or orphans. The one kind of extra record tus cannot avoid is a creation whose
    // 201 was lost on the way back (the client never learns that upload's URL and creates another):
    // there can be no more of those than repeated POSTs, and they hold no bytes (they expire).
    const rows = await db.sql<{ id: string; status: string; expires_at: Date | null }[]>`
      select id, status, expires_at from uploads where filename <> 'warmup.bin'`;
    const ours = new Set(ids);
    const extra = rows.filter((r) => !ours.has(r.id));
    const repeatedPosts = uploads.reduce((sum, u) => sum + u.posts - 1, 0);
    expect(rows.filter((r) => ours.has(r.id))).toHaveLength(FILES);
    expect(extra.length).toBeLessThanOrEqual(repeatedPosts);
    for (const row of extra) {
      expect(row.status).toBe('uploading');
      expect(row.expires_at!.getTime()).toBeGreaterThan(Date.now());
      const head = await fetch(`${server.url}/files/${row.id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
      expect(head.headers.get('upload-offset')).toBe('0');
    }
    if (extra.length > 0) console.log(`[reliability] flaky-network: ${extra.length} creation(s) lost their 201 on the way back (expire unused)`);

    // Memory: bounded, and not growing with the bytes that went through.
    const peak = rss.max();
    const firstHalf = rss.max((s) => s.mark < 0.5);
    const secondHalf = rss.max((s) => s.mark >= 0.5);
    console.log(
      `[reliability] flaky-network RSS: baseline ${formatMiB(baseline)}, peak ${formatMiB(peak)}, first half ${formatMiB(firstHalf)}, second half ${formatMiB(secondHalf)} (${rss.samples.length} samples)`,
    );
    expect(peak).toBeLessThan(300 * MiB);
    expect(secondHalf - firstHalf).toBeLessThan(64 * MiB);
  });
});
