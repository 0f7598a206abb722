// Whether the bucket's CORS configuration lets the upload page's origin upload straight to it:
// browsers need PUT (parts), POST (presigned POST) from that origin, and must be able to read the
// ETag header of a part's answer (ExposeHeaders), which @uppy/aws-s3 sends back on completion.

export interface CorsRule {
  AllowedOrigins?: string[] | undefined;
  AllowedMethods?: string[] | undefined;
  ExposeHeaders?: string[] | undefined;
}

function originMatches(pattern: string, origin: string): boolean {
  if (pattern === '*' || pattern === origin) return true;
  // S3 allows one `*` wildcard in an origin, e.g. https://*.example.com.
  const star = pattern.indexOf('*');
  if (star < 0) return false;
  return origin.startsWith(pattern.slice(0, star)) && origin.endsWith(pattern.slice(star + 1)) && origin.length >= pattern.length - 1;
}

/** What is missing for `origin` (null when nothing is); `rules` null: the bucket has no CORS at all. */
export function corsProblem(rules: readonly CorsRule[] | null, origin: string): string | null {
  if (rules === null || rules.length === 0) return 'the bucket has no CORS configuration';
  const matching = rules.filter((rule) => (rule.AllowedOrigins ?? []).some((pattern) => originMatches(pattern, origin)));
  const methods = new Set(matching.flatMap((rule) => (rule.AllowedMethods ?? []).map((m) => m.toUpperCase())));
  const missing = ['PUT', 'POST'].filter((method) => !methods.has(method));
  if (missing.length > 0) return `no CORS rule allows ${missing.join(' and ')} from ${origin}`;
  const exposesEtag = matching.some((rule) => (rule.ExposeHeaders ?? []).some((header) => header.toLowerCase() === 'etag'));
  if (!exposesEtag) return `the CORS rule for ${origin} does not expose the ETag header`;
  return null;
}

/** The origin browsers send a bucket's presigned requests to (path-style or virtual-hosted). */
export function bucketOrigin(s3: { bucket: string; endpoint?: string | undefined; region: string; forcePathStyle: boolean }): string {
  if (!s3.endpoint) return `https://${s3.bucket}.s3.${s3.region}.amazonaws.com`;
  const endpoint = new URL(s3.endpoint);
  return s3.forcePathStyle ? endpoint.origin : `${endpoint.protocol}//${s3.bucket}.${endpoint.host}`;
}
