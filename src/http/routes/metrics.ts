// GET /metrics: Prometheus text format. Unauthenticated, like most exporters: it carries counts,
// never file names or owners. Restrict it at the network edge if that matters to you.
import type { FastifyPluginAsync } from 'fastify';
import { registry } from '../../metrics.js';

export const metricsRoutes: FastifyPluginAsync = async (app) => {
  app.get('/metrics', { logLevel: 'warn', schema: { hide: true } }, async (_request, reply) => {
    const body = await registry.metrics();
    return reply.header('Content-Type', registry.contentType).send(body);
  });
};
