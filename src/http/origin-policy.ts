// Which Host names this server answers for and which web origins may read its answers: the one
// rule, decided once per request (an onRequest hook at the root), used by every part of the HTTP
// surface — the /api scope (through @fastify/cors) and the tus endpoint (tusHeaders for its own
// answers, applyCorsDecision for @tus/server's, which would say `*`).
//
// - Every request, every auth mode: the Host header (and X-Forwarded-Host when TRUST_PROXY trusts
//   the proxy) must be a syntactically valid host[:port] (RFC 3986: a DNS-style name, an IPv4
//   address or a bracketed IPv6 address); otherwise 400 INVALID_HOST. It becomes Location.
// - AUTH_MODE=none: only loopback names (localhost, 127.0.0.1, [::1]), PUBLIC_URL's host name and
//   the address HOST binds to (when it is not a wildcard), with any port; otherwise
//   421 HOST_NOT_ALLOWED. That is what stops DNS rebinding: a page of evil.example whose name now
//   resolves to 127.0.0.1 still sends `Host: evil.example`. Probes and /metrics are exempt (an
//   orchestrator addresses them by pod IP or service name; they hold no files).
// - Origins: the request's own origin, PUBLIC_URL's origin and CORS_ORIGINS may read answers. With
//   AUTH_MODE=jwt and no CORS_ORIGINS, any origin may (bearer tokens are not sent by the browser
//   on its own, so reading needs the token anyway). Never Access-Control-Allow-Credentials.
// - AUTH_MODE=none: a state-changing request (not GET/HEAD/OPTIONS) from a disallowed origin is
//   refused with 403 ORIGIN_NOT_ALLOWED: CORS only hides answers, and a "simple" cross-site POST
//   (a form, or fetch with mode: 'no-cors') would otherwise still act, with nobody to authenticate.
import { isIPv6 } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';

export interface OriginPolicy {
  authMode: 'none' | 'jwt';
  /** Host names (lowercase, IPv6 bracketed) accepted under AUTH_MODE=none, any port. */
  hostNames: ReadonlySet<string>;
  /** Origins (serialised, as browsers send them) that may read answers besides the request's own. */
  origins: ReadonlySet<string>;
  /** CORS_ORIGINS=* or (jwt without CORS_ORIGINS): any origin may read. */
  anyOrigin: boolean;
}

export type PolicyConfig = Pick<Config, 'host' | 'publicUrl' | 'corsOrigins'> & { auth: Pick<Config['auth'], 'mode'> };

export const LOOPBACK_HOST_NAMES = ['localhost', '127.0.0.1', '[::1]'] as const;
const WILDCARD_BINDS = new Set(['0.0.0.0', '::', '[::]', '']);
/** Routes that answer whatever Host they are addressed by (no user data behind them). */
const HOST_EXEMPT_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function buildOriginPolicy(config: PolicyConfig): OriginPolicy {
  const hostNames = new Set<string>(LOOPBACK_HOST_NAMES);
  const origins = new Set<string>();
  if (config.publicUrl) {
    const url = new URL(config.publicUrl);
    hostNames.add(url.hostname.toLowerCase());
    origins.add(url.origin);
  }
  const bind = config.host.trim().toLowerCase();
  if (!WILDCARD_BINDS.has(bind)) hostNames.add(isIPv6(bind) ? `[${bind}]` : bind);
  const listed = config.corsOrigins ?? [];
  for (const origin of listed) if (origin !== '*') origins.add(origin);
  const anyOrigin = listed.includes('*') || (config.auth.mode === 'jwt' && config.corsOrigins === null);
  return { authMode: config.auth.mode, hostNames, origins, anyOrigin };
}

export interface ParsedHost {
  /** Lowercase; an IPv6 address keeps its brackets. */
  name: string;
  port: number | null;
}

const IPV4_OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${IPV4_OCTET}(?:\\.${IPV4_OCTET}){3}$`);
// RFC 3986 reg-name restricted to its unreserved characters: what DNS names and IPv4 addresses
// are made of. Sub-delimiters (' ( ) ; , ...) and percent-escapes are legal in a URI but in no
// name a resolver answers for, and keeping them out keeps Location safe wherever it is shown.
const REG_NAME = /^[a-z0-9._~-]{1,253}$/;

/** `host[:port]` as RFC 3986 allows it in a Host header, or null. */
export function parseHost(value: string): ParsedHost | null {
  if (value.length === 0 || value.length > 261) return null;
  let name: string;
  let rest: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) return null;
    const inner = value.slice(1, close);
    // No zone ids (fe80::1%eth0): a browser never sends one.
    if (!isIPv6(inner) || inner.includes('%')) return null;
    name = `[${inner.toLowerCase()}]`;
    rest = value.slice(close + 1);
  } else {
    const colon = value.indexOf(':');
    name = (colon < 0 ? value : value.slice(0, colon)).toLowerCase();
    rest = colon < 0 ? '' : value.slice(colon);
    if (!REG_NAME.test(name) && !IPV4.test(name)) return null;
  }
  if (rest === '') return { name, port: null };
  if (!/^:\d{1,5}$/.test(rest)) return null;
  const port = Number(rest.slice(1));
  return port <= 65535 ? { name, port } : null;
}

export interface RequestFacts {
  method: string;
  /** The matched route's pattern (undefined when no route matched). */
  route: string | undefined;
  /** The raw Host header. */
  hostHeader: string | undefined;
  /** The host the request is addressed to (X-Forwarded-Host when the proxy is trusted). */
  host: string;
  /** http or https, as Fastify derived it. */
  protocol: string;
  origin: string | undefined;
}

export interface Refusal {
  status: number;
  code: string;
  message: string;
}

export type Decision = { action: 'refuse'; refusal: Refusal } | { action: 'continue'; allowOrigin: string | null };

/** An Origin header as a browser serialises it (`scheme://host[:port]`), or null. */
function canonicalOrigin(value: string | undefined): string | null {
  if (value === undefined || value === 'null') return null;
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.origin === value ? value : null;
  } catch {
    return null;
  }
}

function ownOrigin(protocol: string, host: string): string | null {
  try {
    return new URL(`${protocol}://${host}`).origin;
  } catch {
    return null;
  }
}

/** The rule itself: pure, so it can be tested without a server. */
export function decide(policy: OriginPolicy, facts: RequestFacts): Decision {
  const refuse = (status: number, code: string, message: string): Decision => ({ action: 'refuse', refusal: { status, code, message } });
  const exempt = facts.route !== undefined && HOST_EXEMPT_ROUTES.has(facts.route);

  const hostHeader = facts.hostHeader;
  if (hostHeader === undefined || hostHeader === '') {
    if (!exempt) return refuse(400, 'INVALID_HOST', 'a Host header is required');
  } else if (parseHost(hostHeader) === null) {
    return refuse(400, 'INVALID_HOST', 'the Host header is not a valid host name, IPv4 or [IPv6] address with an optional port');
  }
  const target = facts.host === '' ? null : parseHost(facts.host);
  if (facts.host !== '' && target === null) {
    return refuse(400, 'INVALID_HOST', 'the forwarded host is not a valid host name, IPv4 or [IPv6] address with an optional port');
  }

  if (policy.authMode === 'none' && !exempt && (target === null || !policy.hostNames.has(target.name))) {
    return refuse(
      421,
      'HOST_NOT_ALLOWED',
      'without authentication (AUTH_MODE=none) this server answers only for localhost, 127.0.0.1, [::1] and the host of PUBLIC_URL; ' +
        'set PUBLIC_URL to the address clients use, or enable AUTH_MODE=jwt',
    );
  }

  if (facts.origin === undefined) return { action: 'continue', allowOrigin: policy.anyOrigin ? '*' : null };
  const origin = canonicalOrigin(facts.origin);
  const self = ownOrigin(facts.protocol, facts.host);
  if (origin !== null && (origin === self || policy.origins.has(origin) || policy.anyOrigin)) {
    return { action: 'continue', allowOrigin: origin };
  }
  // `Origin: null` (sandboxed frames, file://) may read only where every origin may.
  if (policy.anyOrigin) return { action: 'continue', allowOrigin: '*' };
  if (policy.authMode === 'none' && !SAFE_METHODS.has(facts.method.toUpperCase())) {
    return refuse(403, 'ORIGIN_NOT_ALLOWED', 'cross-origin requests that change anything are refused without authentication; list the origin in CORS_ORIGINS');
  }
  return { action: 'continue', allowOrigin: null };
}

const decisions = new WeakMap<object, string | null>();

/**
 * What Access-Control-Allow-Origin this request's answer carries (null: none). Decided by the hook;
 * a request the hook never saw gets none.
 */
export function corsAllowOrigin(request: FastifyRequest): string | null {
  return decisions.get(request.raw) ?? null;
}

/**
 * Puts the decided CORS answer on a response built elsewhere (@tus/server writes its own
 * `Access-Control-Allow-Origin: *`): the decided origin or none, never credentials.
 */
export function applyCorsDecision(request: FastifyRequest, headers: Headers): void {
  const allowOrigin = corsAllowOrigin(request);
  headers.delete('Access-Control-Allow-Credentials');
  if (allowOrigin === null) headers.delete('Access-Control-Allow-Origin');
  else headers.set('Access-Control-Allow-Origin', allowOrigin);
  if (!(headers.get('Vary') ?? '').toLowerCase().includes('origin')) headers.append('Vary', 'Origin');
}

/** The onRequest hook: refuses what the rule refuses, records the CORS answer for the rest. */
export function originPolicyHook(policy: OriginPolicy) {
  return async function originPolicy(request: FastifyRequest, reply: FastifyReply) {
    const origin = request.headers.origin;
    const decision = decide(policy, {
      method: request.method,
      route: request.routeOptions.url,
      hostHeader: request.headers.host,
      host: request.host,
      protocol: request.protocol,
      origin: typeof origin === 'string' ? origin : undefined,
    });
    const allowOrigin = decision.action === 'continue' ? decision.allowOrigin : null;
    decisions.set(request.raw, allowOrigin);
    if (decision.action === 'refuse') {
      const { status, code, message } = decision.refusal;
      return reply.status(status).header('Connection', 'close').send({ error: { code, message } });
    }
  };
}
