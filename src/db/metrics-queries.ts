// Cluster-wide numbers for the Prometheus gauges (read at scrape time).
import { sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { webhookBacklog } from './webhooks.js';

export function databaseGaugeQueries(db: Db) {
  return {
    async queue() {
      const [row] = await db.execute<Record<string, unknown>>(sql`
        select count(*) filter (where locked_at is null and attempts = 0) as pending,
               count(*) filter (where locked_at is not null) as running,
               count(*) filter (where locked_at is null and attempts > 0 and attempts < max_attempts) as retrying,
               count(*) filter (where locked_at is null and attempts >= max_attempts) as failed
        from graphile_worker.jobs`);
      return ['pending', 'running', 'retrying', 'failed'].map((state) => ({ state, count: Number(row?.[state] ?? 0) }));
    },
    async uploads() {
      const rows = await db.execute<{ status: string; count: unknown }>(sql`select status, count(*) as count from uploads group by status`);
      return rows.map((row) => ({ status: row.status, count: Number(row.count) }));
    },
    async dedup() {
      const [row] = await db.execute<{ saved: unknown; shared: unknown }>(sql`
        select coalesce(sum((ref_count - 1) * size), 0) as saved, count(*) as shared from blobs where ref_count > 1`);
      return { bytesSaved: Number(row?.saved ?? 0), sharedBlobs: Number(row?.shared ?? 0) };
    },
    webhookBacklog: () => webhookBacklog(db),
  };
}
