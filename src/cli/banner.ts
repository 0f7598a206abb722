// The startup banner: where the server is, what it runs on, and what to do next. Pure.
import type { Config } from '../config/index.js';
import { describeDatabaseUrl } from './context.js';

export interface BannerFacts {
  url: string;
  storage: string;
  database: string;
  auth: string;
  scanner: string;
}

export function bannerFacts(config: Config, url: string): BannerFacts {
  return {
    url,
    storage: config.storage === 's3' ? `s3://${config.s3.bucket}${config.s3.endpoint ? ` at ${config.s3.endpoint}` : ''}` : `files under ${config.fileStorageDir}`,
    database: config.databaseUrl ? describeDatabaseUrl(config.databaseUrl) : `embedded PostgreSQL under ${config.dataDir}`,
    auth: config.auth.mode === 'jwt' ? `jwt (${config.auth.jwksUrl ? `keys from ${config.auth.jwksUrl}` : 'HS256 with AUTH_JWT_SECRET'})` : 'none (one local owner; not for production)',
    scanner: config.clamav.socket ? `clamd at ${config.clamav.socket}` : config.clamav.host ? `clamd at ${config.clamav.host}:${config.clamav.port}` : 'none (files get scan status "skipped")',
  };
}

export function bannerLines(config: Config, facts: BannerFacts): string[] {
  const lines = [
    `tusvault is running (ROLE=${config.role})`,
    `  url        ${facts.url}`,
    `  storage    ${facts.storage}`,
    `  database   ${facts.database}`,
    `  auth       ${facts.auth}`,
    `  scanner    ${facts.scanner}`,
    '',
    'next:',
  ];
  if (config.role === 'worker') {
    lines.push(`  this process only processes uploads; probes and metrics at ${facts.url}/readyz and ${facts.url}/metrics`);
    return lines;
  }
  lines.push(`  upload page     ${facts.url}/`);
  lines.push(`  tus endpoint    ${facts.url}${config.tusPath}`);
  lines.push(`  API docs        ${facts.url}/docs`);
  if (config.auth.mode === 'jwt' && config.auth.jwtSecret) lines.push('  a token         npx tusvault token --sub <owner> [--admin]');
  lines.push('  health          npx tusvault check');
  return lines;
}
