// Liveness and readiness probes.
import type { FastifyPluginAsync } from 'fastify';
import type { Sql } from '../../db/client.js';
import { probe } from '../../probe.js';
import type { ObjectStorage } from '../../storage/types.js';

export interface HealthRoutesOptions {
  sql: Sql;
  storage: ObjectStorage;
}

const PROBE_TIMEOUT_MS = 3000;

/** 'ok', or why the check failed. */
async function check(run: () => Promise<unknown>): Promise<string> {
  const outcome = await probe(run, PROBE_TIMEOUT_MS);
  return outcome.ok ? 'ok' : outcome.error;
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { sql, storage }) => {
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    const [database, store] = await Promise.all([check(() => sql`select 1`), check(() => storage.ping())]);
    const ready = database === 'ok' && store === 'ok';
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'unavailable',
      checks: { database, storage: store },
    });
  });
};
