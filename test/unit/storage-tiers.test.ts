// The pure parts of storage tiering: which tier a blob belongs in (per kind too), the Restore
// header, the settings, which backends have storage classes.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { durationsFor, policyFor, targetTier, type TierPolicy } from '../../src/lifecycle/tiers.js';
import { createStorage } from '../../src/storage/index.js';
import type { StorageClasses } from '../../src/storage/types.js';
import { parseRestoreHeader } from '../../src/storage/s3.js';

const DAY = 86_400_000;
const policy: TierPolicy = { infrequentAfterMs: 30 * DAY, archiveAfterMs: 90 * DAY, archiveClass: 'GLACIER', restoreDays: 7 };
const now = new Date('2026-12-01T00:00:00Z');
const daysAgo = (days: number) => new Date(now.getTime() - days * DAY);

describe('targetTier', () => {
  it.each([
    ['standard', 10, null],
    ['standard', 30, 'infrequent'],
    ['standard', 95, 'archive'],
    ['infrequent', 40, null],
    ['infrequent', 90, 'archive'],
    ['archive', 400, null],
  ] as const)('a %s blob idle %i days → %s', (current, days, expected) => {
    expect(targetTier(current, daysAgo(days), now, policy)).toBe(expected);
  });

  it('moves nothing with the durations unset, and only what is set', () => {
    expect(targetTier('standard', daysAgo(1000), now, { ...policy, infrequentAfterMs: null, archiveAfterMs: null })).toBeNull();
    expect(targetTier('standard', daysAgo(1000), now, { ...policy, archiveAfterMs: null })).toBe('infrequent');
    expect(targetTier('standard', daysAgo(1000), now, { ...policy, infrequentAfterMs: null })).toBe('archive');
  });
});

describe('per-kind policy', () => {
  const byKind: TierPolicy = {
    ...policy,
    byKind: { audio: { archiveAfterMs: 365 * DAY }, fseq: { infrequentAfterMs: null, archiveAfterMs: 20 * DAY }, video: { archiveAfterMs: null } },
  };

  it.each([
    ['audio', 100, 'infrequent'],
    ['audio', 400, 'archive'],
    ['fseq', 15, null],
    ['fseq', 25, 'archive'],
    ['video', 1000, 'infrequent'],
    ['image', 95, 'archive'],
    [undefined, 95, 'archive'],
  ] as const)('a standard %s blob idle %i days → %s', (kind, days, expected) => {
    expect(targetTier('standard', daysAgo(days), now, byKind, kind)).toBe(expected);
  });

  it('an archive due before infrequent access skips it', () => {
    expect(targetTier('standard', daysAgo(25), now, { ...policy, byKind: { fseq: { archiveAfterMs: 20 * DAY } } }, 'fseq')).toBe('archive');
  });

  it('disk with an archive bucket has no infrequent access, for any kind', () => {
    const disk = policyFor({ archiveOnly: true } as StorageClasses, byKind);
    expect(durationsFor(disk, 'audio')).toEqual({ infrequentAfterMs: null, archiveAfterMs: 365 * DAY });
    expect(durationsFor(disk, 'image')).toEqual({ infrequentAfterMs: null, archiveAfterMs: 90 * DAY });
    expect(targetTier('standard', daysAgo(60), now, disk, 'image')).toBeNull();
    expect(policyFor({} as StorageClasses, byKind)).toBe(byKind);
  });
});

describe('storage backends', () => {
  it('local files have no storage classes without ARCHIVE_S3_*, and archive-only ones with it', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-tiers-'));
    try {
      expect((await createStorage(loadConfig({ DATA_DIR: dataDir }))).classes).toBeUndefined();
      const archiving = await createStorage(loadConfig({ DATA_DIR: dataDir, ARCHIVE_S3_BUCKET: 'cold', ARCHIVE_S3_ENDPOINT: 'http://127.0.0.1:9' }));
      expect(archiving.backend).toBe('file');
      expect(archiving.classes?.archiveOnly).toBe(true);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('parseRestoreHeader', () => {
  it('reads an ongoing and a finished restore', () => {
    expect(parseRestoreHeader('ongoing-request="true"')).toEqual({ ongoing: true, expiresAt: null });
    expect(parseRestoreHeader('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')).toEqual({
      ongoing: false,
      expiresAt: new Date('2012-12-21T00:00:00Z'),
    });
  });

  it.each([undefined, '', 'garbage', 'ongoing-request=maybe'])('is null for %j', (header) => expect(parseRestoreHeader(header)).toBeNull());

  it('keeps the state when the expiry is unreadable', () => {
    expect(parseRestoreHeader('ongoing-request="false", expiry-date="soon"')).toEqual({ ongoing: false, expiresAt: null });
  });
});

describe('tier settings', () => {
  it('are off by default, with S3 list prices and no archive bucket', () => {
    const config = loadConfig({});
    expect(config.tiers).toEqual({
      infrequentAfterMs: null,
      archiveAfterMs: null,
      archiveClass: 'GLACIER',
      restoreDays: 7,
      byKind: {},
      pricesPerGibMonth: { standard: 0.023, infrequent: 0.0125, archive: 0.0036 },
    });
    expect(config.archive).toBeNull();
  });

  it('read durations, the archive class and restore days', () => {
    const { tiers } = loadConfig({ TIER_INFREQUENT_AFTER: '30d', TIER_ARCHIVE_AFTER: '180d', TIER_ARCHIVE_CLASS: 'DEEP_ARCHIVE', TIER_RESTORE_DAYS: '3' });
    expect(tiers).toMatchObject({ infrequentAfterMs: 30 * DAY, archiveAfterMs: 180 * DAY, archiveClass: 'DEEP_ARCHIVE', restoreDays: 3 });
    // DEEP_ARCHIVE's list price unless TIER_PRICE_ARCHIVE says otherwise.
    expect(tiers.pricesPerGibMonth.archive).toBe(0.00099);
  });

  it('read prices per GiB-month and refuse negative or non-numeric ones', () => {
    const { tiers } = loadConfig({ TIER_PRICE_STANDARD: '0.02', TIER_PRICE_INFREQUENT: '0.01', TIER_PRICE_ARCHIVE: '0' });
    expect(tiers.pricesPerGibMonth).toEqual({ standard: 0.02, infrequent: 0.01, archive: 0 });
    expect(() => loadConfig({ TIER_PRICE_STANDARD: '-1', TIER_PRICE_ARCHIVE: 'cheap' })).toThrow(
      /TIER_PRICE_STANDARD="-1": expected a price[\s\S]*TIER_PRICE_ARCHIVE="cheap"/,
    );
  });

  it('read per-kind durations (kind=duration pairs; off: never)', () => {
    const { tiers } = loadConfig({
      TIER_INFREQUENT_AFTER: '30d',
      TIER_ARCHIVE_AFTER: '180d',
      TIER_KIND_INFREQUENT_AFTER: 'audio=60d, video=off',
      TIER_KIND_ARCHIVE_AFTER: 'fseq=20d,audio=365d',
    });
    expect(tiers.byKind).toEqual({
      audio: { infrequentAfterMs: 60 * DAY, archiveAfterMs: 365 * DAY },
      video: { infrequentAfterMs: null },
      fseq: { archiveAfterMs: 20 * DAY },
    });
    for (const bad of ['audio:90d', 'sound=90d', 'audio=soon', 'audio']) {
      expect(() => loadConfig({ TIER_KIND_ARCHIVE_AFTER: bad })).toThrow(/TIER_KIND_ARCHIVE_AFTER=.*expected kind=duration pairs/);
    }
    expect(() => loadConfig({ TIER_KIND_INFREQUENT_AFTER: 'audio=90d', TIER_KIND_ARCHIVE_AFTER: 'audio=30d' })).toThrow(
      /TIER_KIND_ARCHIVE_AFTER for audio must be longer/,
    );
  });

  it('read the archive bucket for STORAGE=file only', () => {
    const { archive } = loadConfig({
      ARCHIVE_S3_BUCKET: 'cold',
      ARCHIVE_S3_ENDPOINT: 'http://127.0.0.1:9000',
      ARCHIVE_S3_ACCESS_KEY_ID: 'id',
      ARCHIVE_S3_SECRET_ACCESS_KEY: 'secret',
      ARCHIVE_S3_FORCE_PATH_STYLE: 'true',
    });
    expect(archive).toEqual({
      bucket: 'cold',
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      accessKeyId: 'id',
      secretAccessKey: 'secret',
      forcePathStyle: true,
    });
    expect(() => loadConfig({ STORAGE: 's3', S3_BUCKET: 'hot', ARCHIVE_S3_BUCKET: 'cold' })).toThrow(/ARCHIVE_S3_BUCKET is set with STORAGE=s3/);
    expect(() => loadConfig({ ARCHIVE_S3_ENDPOINT: 'http://127.0.0.1:9000' })).toThrow(/ARCHIVE_S3_BUCKET is not set/);
  });

  it('refuse an archive sooner than infrequent access, and unknown classes', () => {
    expect(() => loadConfig({ TIER_INFREQUENT_AFTER: '30d', TIER_ARCHIVE_AFTER: '7d' })).toThrow(/TIER_ARCHIVE_AFTER must be longer/);
    expect(() => loadConfig({ TIER_ARCHIVE_CLASS: 'ONEZONE' })).toThrow(ConfigError);
  });
});
