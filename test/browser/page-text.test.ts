// What the upload page says, without a browser: the server's error codes in words, statuses,
// scan verdicts and the key metadata of each kind.
import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatDuration,
  formatLimit,
  metadataItems,
  problemText,
  scanText,
  type FileRecord,
} from '../../web/src/format.js';
import { friendlyError, parseServerError } from '../../web/src/messages.js';

const body = (code: string, message = '', details: Record<string, unknown> = {}) =>
  parseServerError(JSON.stringify({ error: { code, message, ...details } }));

describe('error messages', () => {
  it.each([
    [413, 'QUOTA_EXCEEDED', { available: 1536 }, /Not enough storage left in your quota \(1\.5 KiB free\)/],
    [403, 'QUOTA_FILES_EXCEEDED', { limit: 10 }, /maximum number of files \(10\)/],
    [403, 'QUOTA_MONTHLY_EXCEEDED', {}, /this month’s upload allowance/],
    [413, 'QUOTA_FILE_SIZE_EXCEEDED', { limit: 50_000_000 }, /at most 50 MB per file/],
    [415, 'TYPE_NOT_ALLOWED', {}, /This type of file is not accepted: files of type ".exe"/],
    [415, 'MIME_TYPE_MISMATCH', {}, /does not match its name/],
    [413, 'FILE_TOO_LARGE', {}, /This file is too large/],
    [400, 'INVALID_FILENAME', {}, /The file name cannot be used/],
    [401, 'UNAUTHORIZED', {}, /not signed in: paste a valid access token/],
    [401, 'TOKEN_EXPIRED', {}, /token has expired: paste a new one/],
  ])('%i %s', (status, code, details, expected) => {
    const message = code === 'TYPE_NOT_ALLOWED' ? 'files of type ".exe" are not accepted' : 'server words';
    expect(friendlyError(status, body(code, message, details))).toMatch(expected);
  });

  it('falls back on the status, then on the server’s own message', () => {
    expect(friendlyError(0, null)).toMatch(/connection to the server was lost/);
    expect(friendlyError(503, null)).toMatch(/server had a problem/);
    expect(friendlyError(400, body('SOMETHING_NEW', 'the thing is wrong'))).toBe('The thing is wrong.');
    expect(parseServerError('<html>bad gateway</html>')).toBeNull();
  });
});

describe('file record text', () => {
  const record = (patch: Partial<FileRecord>): FileRecord => ({
    id: 'a'.repeat(32),
    ownerId: 'o',
    filename: 'x',
    mimeType: null,
    kind: 'other',
    size: 1,
    status: 'ready',
    sha256: null,
    md5: null,
    deduplicated: false,
    rejectionReason: null,
    failureReason: null,
    createdAt: new Date().toISOString(),
    completedAt: null,
    readyAt: null,
    scan: { status: 'clean', signature: null, scannedAt: null },
    metadata: null,
    metadataError: null,
    ...patch,
  });

  it('explains rejected, infected and failed files', () => {
    expect(problemText(record({ status: 'rejected', rejectionReason: 'not an FSEQ file' }))).toBe('Rejected: not an FSEQ file');
    expect(
      problemText(record({ status: 'infected', scan: { status: 'infected', signature: 'Eicar-Signature', scannedAt: null } })),
    ).toBe('Infected: Eicar-Signature — quarantined');
    expect(problemText(record({ status: 'failed', failureReason: 'storage unreachable' }))).toBe(
      'Processing failed: storage unreachable',
    );
    expect(problemText(record({ status: 'ready' }))).toBeNull();
    expect(scanText({ status: 'skipped', signature: null, scannedAt: null }, 'ready')).toMatch(/Not scanned/);
    expect(scanText({ status: 'pending', signature: null, scannedAt: null }, 'processing')).toBe('Pending');
  });

  it('picks the key metadata of each kind', () => {
    const fseq = metadataItems(
      record({
        kind: 'fseq',
        metadata: { channelCount: 20, frameCount: 4744, fps: 20, durationMs: 237_200, mediaFile: 'song.ogg', version: '1.0' },
      }),
    );
    expect(Object.fromEntries(fseq.map((i) => [i.field, i.value]))).toMatchObject({
      channelCount: '20',
      frameCount: '4,744',
      fps: '20',
      durationMs: '3:57.2',
      mediaFile: 'song.ogg',
    });
    const xsq = metadataItems(
      record({
        kind: 'xsq',
        metadata: { xlightsVersion: '2024.10', sequenceType: 'Media', durationMs: 61_000, modelCount: 12, effectCount: 345 },
      }),
    );
    expect(xsq.map((i) => `${i.label}: ${i.value}`)).toEqual([
      'xLights version: 2024.10',
      'Type: Media',
      'Duration: 1:01',
      'Models: 12',
      'Effects: 345',
    ]);
    const audio = metadataItems(record({ kind: 'audio', metadata: { durationSec: 0.7836, codec: 'MPEG 1 Layer 3', sampleRate: 44100, channels: 2 } }));
    expect(audio.map((i) => i.value)).toEqual(['0.78 s', 'MPEG 1 Layer 3', '44100 Hz', '2 ch']);
  });

  it('formats sizes, limits and durations', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(96_524)).toBe('94.3 KiB');
    expect(formatBytes(31_457_280)).toBe('30 MiB');
    expect(formatLimit(500_000_000)).toBe('500 MB');
    expect(formatLimit(5 * 2 ** 30)).toBe('5 GiB');
    expect(formatDuration(3_725_000)).toBe('1:02:05');
    expect(formatDuration(9_999)).toBe('10 s');
  });
});
