// Liveness and readiness probes.
import type { FastifyPluginAsync } from 'fastify';
import type { Sql } from '../../db/client.js';
import type { ObjectStorage } from '../../storage/types.js';

export interface HealthRoutesOptions {
  sql: Sql;
  storage: ObjectStorage;
}

const PROBE_TIMEOUT_MS = 3000;

async function probe(check: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch (error) {
    return (error as Error)?.message || 'failed';
  } finally {
    clearTimeout(timer);
  }
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, { sql, storage }) => {
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    const [database, store] = await Promise.all([probe(() => sql`select 1`), probe(() => storage.ping())]);
    const ready = database === 'ok' && store === 'ok';
    return reply.status(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'unavailable',
      checks: { database, storage: store },
    });
  });
};
