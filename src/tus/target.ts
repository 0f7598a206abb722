// What a tus request acts on, decided once from the raw request line: the collection (creation)
// or exactly one upload id. Everything downstream — ownership, records, @tus/server's handlers
// through `getFileIdFromRequest` — uses this id and never reads the URL again, so a URL that
// could name a second upload (a query string, extra or encoded segments, `;` parameters) is
// refused here instead of being interpreted differently by two layers. Pure: strings in.
import { AppError, notFound } from '../errors.js';

/** Upload ids are 128 random bits in hex; anything else cannot exist. */
export const UPLOAD_ID_PATTERN = /^[0-9a-f]{32}$/;

/** Methods of the tus endpoint. */
export const TUS_METHODS = ['OPTIONS', 'HEAD', 'POST', 'PATCH', 'DELETE'] as const;
export type TusMethod = (typeof TUS_METHODS)[number];

/** X-HTTP-Method-Override (tus 1.0.0): a POST standing in for what some environments cannot send. */
const OVERRIDABLE: readonly string[] = ['PATCH', 'DELETE'];

export type TusTarget = { kind: 'collection' } | { kind: 'upload'; id: string };

export interface TusRequestLine {
  method: TusMethod;
  target: TusTarget;
}

/** Characters of one path segment we ever hand out (RFC 3986 unreserved). */
const SEGMENT = /^[A-Za-z0-9._~-]+$/;

const invalidUrl = (message: string) => new AppError(400, 'INVALID_UPLOAD_URL', message);

/** The path (no query) of `rawUrl` relative to `tusPath`: '' for the collection, else the rest. */
function targetOfPath(path: string, tusPath: string): TusTarget {
  if (path === tusPath || path === `${tusPath}/`) return { kind: 'collection' };
  if (!path.startsWith(`${tusPath}/`)) throw invalidUrl(`tus requests go to ${tusPath} or ${tusPath}/<upload id>`);
  const segment = path.slice(tusPath.length + 1);
  if (!SEGMENT.test(segment)) {
    throw invalidUrl(`an upload URL is ${tusPath}/<upload id>: one segment, without encoded characters, parameters or a trailing slash`);
  }
  // A well-formed segment that is not an id of ours names nothing: the same 404 as a missing id.
  if (!UPLOAD_ID_PATTERN.test(segment)) throw notFound();
  return { kind: 'upload', id: segment };
}

/**
 * The effective method and target of a request to the tus endpoint. `rawUrl` is the request
 * target exactly as received (Node's `req.url`).
 */
export function parseTusRequestLine(
  rawMethod: string,
  rawUrl: string,
  methodOverride: string | string[] | undefined,
  tusPath: string,
): TusRequestLine {
  if (rawUrl.includes('?') || rawUrl.includes('#')) {
    throw invalidUrl('tus requests carry no query string: the upload URL is exactly the Location this server returned');
  }
  let method = rawMethod.toUpperCase();
  if (methodOverride !== undefined) {
    const override = Array.isArray(methodOverride) ? methodOverride.join(',') : methodOverride;
    if (method !== 'POST' || !OVERRIDABLE.includes(override.toUpperCase())) {
      throw new AppError(
        400,
        'INVALID_METHOD_OVERRIDE',
        'X-HTTP-Method-Override is accepted only on a POST, with the value PATCH or DELETE',
      );
    }
    method = override.toUpperCase();
  }
  if (!(TUS_METHODS as readonly string[]).includes(method)) {
    throw new AppError(405, 'METHOD_NOT_ALLOWED', `${method.slice(0, 20)} is not a tus method`, {}, { Allow: TUS_METHODS.join(', ') });
  }
  const target = targetOfPath(rawUrl, tusPath);
  const tusMethod = method as TusMethod;
  if (tusMethod === 'POST' && target.kind === 'upload') {
    throw new AppError(405, 'METHOD_NOT_ALLOWED', `create uploads with POST ${tusPath}`, {}, { Allow: 'HEAD, PATCH, DELETE, OPTIONS' });
  }
  if ((tusMethod === 'HEAD' || tusMethod === 'PATCH' || tusMethod === 'DELETE') && target.kind === 'collection') {
    throw new AppError(405, 'METHOD_NOT_ALLOWED', `${tusMethod} acts on one upload: ${tusPath}/<upload id>`, {}, { Allow: 'POST, OPTIONS' });
  }
  return { method: tusMethod, target };
}

/**
 * The upload id named by a URL in `Upload-Concat: final;…` (absolute, or a path), under the same
 * rules as a request line; null when it is not an upload URL of this endpoint.
 */
export function uploadIdOfUrl(url: string, tusPath: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url, 'http://relative.invalid');
  } catch {
    return null;
  }
  if (parsed.search !== '' || parsed.hash !== '' || url.includes('?') || url.includes('#')) return null;
  try {
    const target = targetOfPath(parsed.pathname, tusPath);
    return target.kind === 'upload' ? target.id : null;
  } catch {
    return null;
  }
}
