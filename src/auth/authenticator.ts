// Who is asking. AUTH_MODE=none: one local owner (quick start). AUTH_MODE=jwt: a bearer token
// verified with jose (HS256 with AUTH_JWT_SECRET, or RS256/ES256 keys from AUTH_JWKS_URL),
// expiry always enforced, issuer and audience when configured. `sub` is the owner; the claim
// `role: "admin"` (exactly that string) opens the admin endpoints, and nothing else does: a
// `roles` array, `scope` or a differently cased value does not (the contract names one claim, and
// an identity provider's roles list often carries roles of other applications). Times (exp, nbf
// and iat) are checked with CLOCK_TOLERANCE_SECONDS of skew either way; a token issued in the
// future is refused like one not yet valid (jose checks iat only with maxTokenAge).
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config/index.js';
import { AppError } from '../errors.js';
import { LOCAL_PRINCIPAL, type Principal } from './principal.js';

export interface Credentials {
  /** The Authorization header. */
  authorization?: string | undefined;
}

export interface Authenticator {
  readonly mode: 'none' | 'jwt';
  authenticate(credentials: Credentials): Promise<Principal>;
  /** Verifies a bare token (e.g. from a signed link); same rules as the header. */
  verifyToken(token: string): Promise<Principal>;
}

// Owner ids end up in URLs, logs and storage accounting: keep them printable and bounded.
const OWNER_ID_PATTERN = /^[A-Za-z0-9._:@|+=-]{1,200}$/;

/** Clock skew tolerated between the token issuer and this server, for exp, nbf and iat. */
export const CLOCK_TOLERANCE_SECONDS = 60;

const unauthorized = (message: string, code = 'UNAUTHORIZED') =>
  new AppError(401, code, message, {}, { 'WWW-Authenticate': 'Bearer realm="tusvault"' });

const notYetValid = (claim: 'iat' | 'nbf') =>
  unauthorized(
    `the token is not valid yet (its "${claim}" is in the future; clocks may differ by at most ${CLOCK_TOLERANCE_SECONDS} s)`,
    'TOKEN_NOT_YET_VALID',
  );

export function principalFromClaims(payload: JWTPayload): Principal {
  const sub = payload.sub;
  if (typeof sub !== 'string' || !OWNER_ID_PATTERN.test(sub)) {
    throw unauthorized('the token has no usable subject (sub)', 'INVALID_TOKEN');
  }
  return { ownerId: sub, role: payload.role === 'admin' ? 'admin' : 'user' };
}

export function createAuthenticator(config: Config): Authenticator {
  if (config.auth.mode === 'none') {
    return {
      mode: 'none',
      authenticate: async () => LOCAL_PRINCIPAL,
      verifyToken: async () => LOCAL_PRINCIPAL,
    };
  }

  const { jwtSecret, jwksUrl, issuer, audience } = config.auth;
  const key: Uint8Array | JWTVerifyGetKey = jwksUrl
    ? createRemoteJWKSet(new URL(jwksUrl))
    : new TextEncoder().encode(jwtSecret ?? '');
  const algorithms = jwksUrl ? ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256'] : ['HS256', 'HS384', 'HS512'];

  async function verifyToken(token: string): Promise<Principal> {
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        ...(issuer ? { issuer } : {}),
        ...(audience ? { audience } : {}),
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      // jose has checked that iat, when present, is a number.
      if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + CLOCK_TOLERANCE_SECONDS) {
        throw notYetValid('iat');
      }
      return principalFromClaims(payload);
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw unauthorized('the token has expired', 'TOKEN_EXPIRED');
      if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'nbf' && error.reason === 'check_failed') {
        throw notYetValid('nbf');
      }
      if (error instanceof joseErrors.JWTClaimValidationFailed) {
        throw unauthorized(`the token's "${error.claim}" claim is not accepted`, 'INVALID_TOKEN');
      }
      if (error instanceof joseErrors.JOSEError) throw unauthorized('the token is not valid', 'INVALID_TOKEN');
      throw error;
    }
  }

  return {
    mode: 'jwt',
    verifyToken,
    async authenticate({ authorization }) {
      if (!authorization) throw unauthorized('a bearer token is required (Authorization: Bearer <token>)');
      const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(authorization);
      if (!match) throw unauthorized('the Authorization header must be "Bearer <token>"', 'INVALID_TOKEN');
      return verifyToken(match[1]!);
    },
  };
}
