// The tus endpoint (src/tus/endpoint.ts) hosted on Fastify the documented way: no body parsing
// (the raw request stream goes to @tus/server untouched), the raw req/res handed over, and what
// is HTTP's added to the endpoint's answer: CORS (the origin policy) and the reply's own headers
// (X-Request-ID).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { sendNodeResponse } from 'srvx/node';
import type { Config } from '../../config/index.js';
import type { TusEndpoint } from '../../tus/endpoint.js';
import { TUS_METHODS } from '../../tus/target.js';
import { applyCorsDecision } from '../origin-policy.js';

export interface TusRoutesOptions {
  config: Config;
  endpoint: TusEndpoint;
}

export const tusRoutes: FastifyPluginAsync<TusRoutesOptions> = async (app, { config, endpoint }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  async function handle(request: FastifyRequest, reply: FastifyReply) {
    reply.hijack();
    const response = await endpoint.handle({
      req: request.raw,
      res: reply.raw,
      log: request.log,
      baseUrl: config.publicUrl ?? `${request.protocol}://${request.host}`,
    });
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined && !response.headers.has(name)) response.headers.set(name, String(value));
    }
    applyCorsDecision(request, response.headers);
    await sendNodeResponse(reply.raw, response);
  }

  // Every path under the endpoint comes here, so that each gets the endpoint's answer.
  app.route({ method: [...TUS_METHODS], url: '/', handler: handle });
  app.route({ method: [...TUS_METHODS], url: '/*', handler: handle });
};
