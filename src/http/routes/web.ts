// The upload page: the static files built from web/ (`npm run build:web`, also run by `npm install`
// and `npm run build`) served at /, and GET /api/config, the public settings the page needs before
// it can talk to the server (whether it must ask for a token, where the tus endpoint is, which
// files are accepted). Registered at the root, outside the authenticated /api scope.
//
// Caching: the built assets carry a content hash in their names and are cached for a year;
// index.html is revalidated on every load, so a new build is picked up at once. The page runs
// under a strict Content-Security-Policy: its own scripts and styles only, no inline code.
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { KINDS, type Config } from '../../config/index.js';
import { policyRules } from '../../policy/type-policy.js';
import { bucketOrigin } from '../../direct/bucket-cors.js';

export interface WebRoutesOptions {
  config: Config;
  /** Where the built page is; found next to the project by default. */
  root?: string;
}

/** The page's Content-Security-Policy; `connect` adds origins it may send requests to (the bucket). */
export const pageCsp = (connect: string[] = []) => [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // Uppy shows thumbnails from blob: URLs and a few data: icons.
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  ["connect-src 'self'", ...connect].join(' '),
  "font-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const PAGE_CSP = pageCsp();

const pageHeaders = (config: Config) => ({
  // Direct-to-bucket uploads send their bytes to the bucket.
  'Content-Security-Policy': pageCsp(config.storage === 's3' ? [bucketOrigin(config.s3)] : []),
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=()',
});

/** web/dist at the project root, found from here whether running from src/ (tsx) or dist/. */
export function findWebRoot(): string | null {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'web', 'dist');
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
  }
  return null;
}

const KindLimit = z.object({
  kind: z.enum(KINDS),
  extensions: z.array(z.string()).describe('Accepted file name extensions; empty for `other` (anything)'),
  maxSize: z.number().int().describe('Largest file of this kind, in bytes'),
});

export const PublicConfig = z
  .object({
    authMode: z.enum(['none', 'jwt']).describe('`jwt`: send `Authorization: Bearer <token>` on every request'),
    tusPath: z.string().describe('The tus endpoint (POST here to create an upload)'),
    maxUploadSize: z.number().int().describe('Largest upload accepted (Tus-Max-Size)'),
    allowedKinds: z.array(z.enum(KINDS)),
    limits: z.array(KindLimit).describe('What each accepted kind may be'),
    directUploads: z.boolean().describe('STORAGE=s3: files may go straight to the bucket through /api/s3 (presigned requests)'),
  })
  .meta({ id: 'PublicConfig' });

export function publicConfig(config: Config): z.output<typeof PublicConfig> {
  const limits: Array<z.output<typeof KindLimit>> = policyRules(config.kindMaxSizes).filter((rule) => config.allowedKinds.includes(rule.kind)).map((rule) => ({
    kind: rule.kind,
    extensions: [...rule.extensions],
    maxSize: Math.min(rule.maxSize, config.maxUploadSize),
  }));
  if (config.allowedKinds.includes('other')) limits.push({ kind: 'other', extensions: [], maxSize: config.maxUploadSize });
  return {
    authMode: config.auth.mode,
    tusPath: config.tusPath,
    maxUploadSize: config.maxUploadSize,
    allowedKinds: [...config.allowedKinds],
    limits,
    directUploads: config.storage === 's3',
  };
}

export const webRoutes: FastifyPluginAsync<WebRoutesOptions> = async (plugin, options) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const settings = publicConfig(options.config);
  const PAGE_HEADERS = pageHeaders(options.config);

  app.get(
    '/api/config',
    {
      schema: {
        tags: ['config'],
        summary: 'Public settings for clients: auth mode, tus endpoint, accepted kinds and their limits (no token needed)',
        security: [],
        response: { 200: PublicConfig },
      },
    },
    async (_request, reply) => {
      reply.header('Cache-Control', 'no-cache');
      return settings;
    },
  );

  const root = options.root ?? findWebRoot();
  // The admin dashboard (web/admin, built to admin.html beside index.html so its relative asset
  // URLs are the upload page's). The page is public; its data needs an admin token.
  app.get('/admin', { schema: { hide: true } }, async (request, reply) => {
    if (request.url.split('?')[0]!.endsWith('/')) return reply.redirect('../admin');
    reply.headers({ ...PAGE_HEADERS, 'Cache-Control': 'no-cache' }).type('text/html; charset=utf-8');
    if (!root || !existsSync(path.join(root, 'admin.html'))) {
      return reply.status(503).type('text/plain; charset=utf-8').send('The admin page is not built. Run `npm run build:web` and restart the server.\n');
    }
    return reply.send(createReadStream(path.join(root, 'admin.html')));
  });
  if (!root) {
    app.log.warn('the upload page is not built (web/dist is missing): run `npm run build:web` to serve it at /');
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply
        .status(503)
        .headers({ ...PAGE_HEADERS, 'Cache-Control': 'no-store' })
        .type('text/plain; charset=utf-8')
        .send('The upload page is not built. Run `npm run build:web` (or `npm install`) and restart the server.\n'),
    );
    return;
  }

  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    index: ['index.html'],
    // Files are looked up on each request (not listed once at start), so a rebuild while the server
    // runs is served at once; a path that is not a file gets the usual 404.
    wildcard: true,
    // The build writes .br and .gz next to each asset.
    preCompressed: true,
    cacheControl: false,
    decorateReply: false,
    schemaHide: true,
    setHeaders(reply, filePath) {
      const name = path.basename(filePath);
      if (/^(index|admin)\.html(\.(br|gz))?$/.test(name)) {
        for (const [header, value] of Object.entries(PAGE_HEADERS)) reply.header(header, value);
        reply.header('Cache-Control', 'no-cache');
      } else if (/-[A-Z0-9]{8,}\.\w+(\.map)?(\.(br|gz))?$/.test(name)) {
        reply.header('Cache-Control', 'public, max-age=31536000, immutable');
        reply.header('X-Content-Type-Options', 'nosniff');
      } else {
        reply.header('Cache-Control', 'public, max-age=3600');
        reply.header('X-Content-Type-Options', 'nosniff');
      }
    },
  });
};
