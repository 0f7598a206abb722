// `tusvault token`: a JWT signed with the configured HS256 secret, for development and scripts.
import { SignJWT } from 'jose';
import { parseDuration } from '../../config/units.js';
import { OwnerIdParams } from '../../http/schemas.js';
import { EXIT, UsageError, parseCommandArgs, positionals, type Command } from '../command.js';
import { cliContext } from '../context.js';

const help = `Usage: tusvault token --sub <owner> [--admin] [--ttl 1h]

Prints a bearer token (HS256, signed with AUTH_JWT_SECRET; with AUTH_JWT_ISSUER and
AUTH_JWT_AUDIENCE when set) that this server accepts.

Options:
  --sub <owner>   the owner id the token speaks for (required)
  --admin         add the claim role: "admin" (opens the admin API and /admin)
  --ttl <time>    how long it is valid: 30m, 1h, 7d (default 1h)

Example:
  curl -H "Authorization: Bearer $(npx tusvault token --sub alice)" http://127.0.0.1:1080/api/me/quota`;

export const tokenCommand: Command = {
  name: 'token',
  help,
  async run(args) {
    const { values, positionals: rest } = parseCommandArgs('token', args, {
      sub: { type: 'string' },
      admin: { type: 'boolean', default: false },
      ttl: { type: 'string', default: '1h' },
    });
    positionals('token', rest, []);
    if (!values.sub) throw new UsageError('--sub <owner> is required', 'token');
    if (!OwnerIdParams.safeParse({ ownerId: values.sub }).success) {
      throw new UsageError('--sub: an owner id is 1 to 200 characters of letters, digits and ._:@|+=-', 'token');
    }
    const ttlMs = parseDuration(values.ttl);
    if (ttlMs === null || ttlMs < 1000) throw new UsageError('--ttl: expected a duration such as 30m, 1h or 7d', 'token');

    const { config } = cliContext();
    const { jwtSecret, issuer, audience } = config.auth;
    if (config.auth.jwksUrl) {
      process.stderr.write('AUTH_JWKS_URL is set: this server accepts only tokens signed with those keys, not HS256 ones from here\n');
      return EXIT.config;
    }
    if (!jwtSecret) {
      process.stderr.write('AUTH_JWT_SECRET is not set: tokens are signed with it (AUTH_MODE=jwt, HS256)\n');
      return EXIT.config;
    }
    const jwt = new SignJWT(values.admin ? { role: 'admin' } : {})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(values.sub)
      .setIssuedAt()
      .setExpirationTime(Math.floor((Date.now() + ttlMs) / 1000));
    if (issuer) jwt.setIssuer(issuer);
    if (audience) jwt.setAudience(audience);
    process.stdout.write(`${await jwt.sign(new TextEncoder().encode(jwtSecret))}\n`);
    if (config.auth.mode !== 'jwt') process.stderr.write('note: AUTH_MODE is not jwt, so this server ignores tokens\n');
    return EXIT.ok;
  },
};
