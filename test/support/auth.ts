// Tokens minted in tests, signed with the test server's HS256 secret.
import { SignJWT } from 'jose';

export const JWT_SECRET = 'test-secret-that-is-at-least-32-characters-long';

export function jwtEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: JWT_SECRET, AUTH_JWT_ISSUER: 'https://issuer.test', AUTH_JWT_AUDIENCE: 'tusvault', ...extra };
}

export interface TokenOptions {
  role?: string;
  expiresIn?: string | number;
  secret?: string;
  issuer?: string;
  audience?: string;
  claims?: Record<string, unknown>;
}

export async function token(sub: string | undefined, options: TokenOptions = {}): Promise<string> {
  const jwt = new SignJWT({ ...(options.role ? { role: options.role } : {}), ...options.claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setIssuer(options.issuer ?? 'https://issuer.test')
    .setAudience(options.audience ?? 'tusvault')
    .setExpirationTime(options.expiresIn ?? '10m');
  if (sub !== undefined) jwt.setSubject(sub);
  return jwt.sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

export async function bearer(sub: string, options: TokenOptions = {}): Promise<Record<string, string>> {
  return { Authorization: `Bearer ${await token(sub, options)}` };
}
