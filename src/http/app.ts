// The HTTP application: Fastify with the tus endpoint, the REST API and the probes, each an
// encapsulated plugin. Errors from every route are mapped in one place (errors.ts).
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { TusEndpoint } from '../tus/endpoint.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { ObjectStorage } from '../storage/types.js';
import { toHttpError } from './errors.js';
import { getOrCreateSecret } from '../db/secrets.js';
import type { UploadEvents } from '../events/upload-events.js';
import { adminRoutes } from './routes/admin.js';
import { adminAnalyticsRoutes } from './routes/admin-analytics.js';
import { adminFileRoutes } from './routes/admin-files.js';
import { adminWebhookRoutes } from './routes/admin-webhooks.js';
import { eventsRoutes } from './routes/events.js';
import { filesRoutes } from './routes/files.js';
import { previewsRoutes } from './routes/previews.js';
import { metricsRoutes } from './routes/metrics.js';
import { openConnections } from '../metrics.js';
import { quotaRoutes } from './routes/quota.js';
import { s3DirectRoutes } from './routes/s3-direct.js';
import type { DirectUploads } from '../direct/direct-uploads.js';
import { createLinkSigner } from './signed-links.js';
import { healthRoutes } from './routes/health.js';
import { tusRoutes } from './routes/tus.js';
import { webRoutes } from './routes/web.js';
import { clientErrorHandler, frameworkErrorHandler } from './client-errors.js';
import { buildOriginPolicy, corsAllowOrigin, originPolicyHook } from './origin-policy.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** The route also accepts a signed link (?expires=&sig=) instead of a bearer token. */
    signedLink?: boolean;
  }
}

export interface AppDeps {
  config: Config;
  logger: Logger;
  database: Database;
  storage: ObjectStorage;
  endpoint: TusEndpoint;
  events: UploadEvents;
  authenticator: Authenticator;
  /** Direct-to-bucket uploads (STORAGE=s3 only). */
  direct?: DirectUploads | undefined;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
/** Longer request targets are refused with 414 (Node refuses a head over 16 KiB with 431 first). */
const MAX_URL_LENGTH = 8192;

/**
 * What every HTTP server of ours has: logging with request ids, the error mapping, probes and
 * /metrics. A worker process serves just this (for its probes and its metrics).
 */
export async function buildBaseApp(deps: Pick<AppDeps, 'config' | 'logger' | 'database' | 'storage'>): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    trustProxy:
      typeof config.trustProxy === 'number'
        ? (_address: string, hop: number) => hop < (config.trustProxy as number)
        : config.trustProxy,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Uploads may take hours; what must not happen is a connection that stops sending (a stalled
    // body or slowloris): those are cut after IDLE_TIMEOUT of silence (default a minute). Headers
    // larger than Node's 16 KiB limit are refused by Node itself with 431.
    requestTimeout: 0,
    connectionTimeout: config.idleTimeoutMs,
    keepAliveTimeout: 65_000,
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // A request Node's parser refuses (431, malformed, Content-Length with Transfer-Encoding) and
    // a path the router cannot decode or whose segment is too long still get a JSON error that
    // repeats nothing of the request. A missing Host is the origin policy's to answer (JSON 400).
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    http: { requireHostHeader: false },
    // Keep a caller's request id when it is sane, so logs can be followed across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
    },
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-ID', request.id);
    if (request.url.length > MAX_URL_LENGTH) {
      return reply.status(414).send({ error: { code: 'URI_TOO_LONG', message: `the request target is longer than ${MAX_URL_LENGTH} characters` } });
    }
  });
  // Host names and web origins: which are answered, which may read the answers (origin-policy.ts).
  app.addHook('onRequest', originPolicyHook(buildOriginPolicy(config)));

  app.setErrorHandler((error, request, reply) => {
    const mapped = toHttpError(error);
    if (mapped.status >= 500) request.log.error({ err: error }, 'request failed');
    return reply.status(mapped.status).headers(mapped.headers).send(mapped.body);
  });

  app.setNotFoundHandler((request, reply) =>
    // Nothing of the request is repeated back (no path, no method): an error body is never a mirror.
    reply.status(404).send({ error: { code: 'ROUTE_NOT_FOUND', message: 'no route for this method and path' } }),
  );

  await app.register(healthRoutes, { sql: deps.database.sql, storage: deps.storage });
  await app.register(metricsRoutes);
  app.server.on('connection', (socket) => {
    openConnections.inc();
    socket.once('close', () => openConnections.dec());
  });
  return app;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = await buildBaseApp(deps);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'tusvault',
        version: '1.0.0',
        description:
          'Resumable uploads (tus 1.0.0 at ' +
          config.tusPath +
          ') and the files API. Authenticate with `Authorization: Bearer <JWT>` when AUTH_MODE=jwt.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(tusRoutes, { prefix: config.tusPath, config, endpoint: deps.endpoint });
  // The upload page at / and GET /api/config (public: outside the authenticated /api scope).
  await app.register(webRoutes, { config });

  await app.register(
    async (api) => {
      // Which origin may read is the origin policy's decision (never with credentials).
      await api.register(cors, {
        delegator: (request, callback) =>
          callback(null, {
            origin: corsAllowOrigin(request) ?? false,
            credentials: false,
            methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
            strictPreflight: false,
            exposedHeaders: ['ETag', 'Content-Range', 'Content-Disposition', 'X-Request-ID'],
          }),
      });
      api.decorateRequest('principal', null as unknown as Principal);
      api.addHook('preHandler', async (request) => {
        // A signed link stands in for a token on the routes that accept one; the route checks it.
        const query = request.query as Record<string, unknown> | undefined;
        if (request.routeOptions.config.signedLink && typeof query?.sig === 'string') return;
        request.principal = await deps.authenticator.authenticate({ authorization: request.headers.authorization });
      });
      const signer = createLinkSigner(await getOrCreateSecret(deps.database.db, 'download-links'));
      await api.register(filesRoutes, { db: deps.database.db, storage: deps.storage, signer, logger: deps.logger, tiers: config.tiers });
      await api.register(previewsRoutes, { db: deps.database.db, storage: deps.storage });
      await api.register(quotaRoutes, { db: deps.database.db, config });
      await api.register(eventsRoutes, { db: deps.database.db, storage: deps.storage, events: deps.events });
      await api.register(adminRoutes, { db: deps.database.db, storage: deps.storage, config, logger: deps.logger });
      await api.register(adminAnalyticsRoutes, { db: deps.database.adhoc, tiers: config.tiers, storage: deps.storage });
      await api.register(adminFileRoutes, { db: deps.database.db });
      await api.register(adminWebhookRoutes, { db: deps.database.db, config });
      if (deps.direct) await api.register(s3DirectRoutes, { direct: deps.direct });
    },
    { prefix: '/api' },
  );

  return app;
}
