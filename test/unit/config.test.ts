import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { parseDuration, parseSize } from '../../src/config/units.js';

describe('sizes and durations', () => {
  it.each([
    ['500MB', 500_000_000],
    ['5GiB', 5 * 2 ** 30],
    ['1.5 KiB', 1536],
    ['1024', 1024],
    ['10kb', 10_000],
  ])('parses size %s', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(['', 'MB', '-5MB', '5 parsecs', '1e9', '5GB!'])('rejects size %j', (text) => expect(parseSize(text)).toBeNull());

  it.each([
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['30s', 30_000],
    ['250ms', 250],
    ['1500', 1500],
  ])('parses duration %s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['h', '1y', 'soon', '-1h'])('rejects duration %j', (text) => expect(parseDuration(text)).toBeNull());
});

describe('loadConfig', () => {
  it('has working defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 1080,
      tusPath: '/files',
      storage: 'file',
      role: 'all',
      allowedKinds: ['fseq', 'xsq', 'audio', 'video', 'image'],
      auth: { mode: 'none' },
      scanRequired: false,
    });
    expect(config.fileStorageDir.endsWith('/data/files')).toBe(true);
    expect(config.databaseUrl).toBeUndefined();
  });

  it('lists every problem at once, naming the variable, the value and what is expected', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', MAX_UPLOAD_SIZE: 'huge', STORAGE: 'tape', UPLOAD_EXPIRY: 'soon', ALLOWED_KINDS: 'fseq,movies' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems).toContain('PORT="eighty": expected a whole number from 0 to 65535');
    expect(problems.find((p) => p.startsWith('MAX_UPLOAD_SIZE="huge"'))).toMatch(/expected a size such as 500MB/);
    expect(problems.find((p) => p.startsWith('STORAGE="tape"'))).toMatch(/expected one of file, s3/);
    expect(problems.find((p) => p.startsWith('UPLOAD_EXPIRY="soon"'))).toMatch(/expected a duration/);
    expect(problems.find((p) => p.startsWith('ALLOWED_KINDS='))).toMatch(/comma-separated list/);
  });

  it('checks settings that depend on each other', () => {
    expect(() => loadConfig({ STORAGE: 's3' })).toThrow(/S3_BUCKET is not set/);
    expect(() => loadConfig({ AUTH_MODE: 'jwt' })).toThrow(/AUTH_JWT_SECRET and AUTH_JWKS_URL are both unset/);
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(/AUTH_MODE=none with HOST="0.0.0.0"/);
    expect(loadConfig({ HOST: '0.0.0.0', AUTH_ALLOW_NONE_ON_PUBLIC_HOST: 'true' }).host).toBe('0.0.0.0');
    expect(() => loadConfig({ SCAN_REQUIRED: 'true' })).toThrow(/no scanner is configured/);
    expect(() => loadConfig({ TUS_PATH: '/api/uploads' })).toThrow(/TUS_PATH/);
  });
});
