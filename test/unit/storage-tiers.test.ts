// The pure parts of storage tiering: which tier a blob belongs in, the Restore header, the settings.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { targetTier, type TierPolicy } from '../../src/lifecycle/tiers.js';
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
  it('are off by default', () => {
    expect(loadConfig({}).tiers).toEqual({ infrequentAfterMs: null, archiveAfterMs: null, archiveClass: 'GLACIER', restoreDays: 7 });
  });

  it('read durations, the archive class and restore days', () => {
    const { tiers } = loadConfig({ TIER_INFREQUENT_AFTER: '30d', TIER_ARCHIVE_AFTER: '180d', TIER_ARCHIVE_CLASS: 'DEEP_ARCHIVE', TIER_RESTORE_DAYS: '3' });
    expect(tiers).toEqual({ infrequentAfterMs: 30 * DAY, archiveAfterMs: 180 * DAY, archiveClass: 'DEEP_ARCHIVE', restoreDays: 3 });
  });

  it('refuse an archive sooner than infrequent access, and unknown classes', () => {
    expect(() => loadConfig({ TIER_INFREQUENT_AFTER: '30d', TIER_ARCHIVE_AFTER: '7d' })).toThrow(/TIER_ARCHIVE_AFTER must be longer/);
    expect(() => loadConfig({ TIER_ARCHIVE_CLASS: 'ONEZONE' })).toThrow(ConfigError);
  });
});
