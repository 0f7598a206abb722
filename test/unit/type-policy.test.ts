import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { classifyDeclared, PolicyViolation, policyRules, sanitizeFilename } from '../../src/policy/type-policy.js';

const options = { allowedKinds: ['fseq', 'xsq', 'audio', 'video', 'image'] as const, maxUploadSize: 5 * 2 ** 30 };

describe('classifyDeclared', () => {
  it.each([
    ['show.fseq', null, 'fseq'],
    ['SHOW.FSEQ', 'application/octet-stream', 'fseq'],
    ['song.xsq', 'text/xml', 'xsq'],
    ['layout.xml', null, 'xsq'],
    ['track.flac', 'audio/flac', 'audio'],
    ['voice.m4a', 'audio/mp4', 'audio'],
    ['clip.webm', 'video/webm', 'video'],
    ['cover.jpeg', 'image/jpeg; charset=binary', 'image'],
  ])('%s (%s) is %s', (filename, mimeType, kind) => {
    expect(classifyDeclared({ filename, mimeType, size: 100 }, { ...options, allowedKinds: [...options.allowedKinds] }).kind).toBe(kind);
  });

  it('names the rule that fails', () => {
    const check = (filename: string, mimeType: string | null, size: number | null, allowed = [...options.allowedKinds] as string[]) => {
      try {
        classifyDeclared({ filename, mimeType, size }, { ...options, allowedKinds: allowed as never });
        return null;
      } catch (error) {
        return error as PolicyViolation;
      }
    };
    expect(check('notes.txt', null, 10)).toMatchObject({ code: 'TYPE_NOT_ALLOWED', details: { extension: '.txt' } });
    expect(check('noextension', null, 10)).toMatchObject({ code: 'TYPE_NOT_ALLOWED', details: { extension: null } });
    expect(check('song.mp3', 'image/png', 10)).toMatchObject({ code: 'MIME_TYPE_MISMATCH' });
    expect(check('big.png', null, 10_000_001)).toMatchObject({ code: 'FILE_TOO_LARGE', details: { limit: 10_000_000 } });
    expect(check('show.fseq', null, 10, ['audio'])?.message).toBe('fseq files are not accepted by this server');
    expect(check('notes.txt', null, 10, ['other'])).toBeNull();
  });

  it('takes per-kind limits from KIND_MAX_SIZES', () => {
    const config = loadConfig({ KIND_MAX_SIZES: 'fseq=1GB, image=20MB' });
    expect(config.kindMaxSizes).toEqual({ fseq: 1e9, image: 2e7 });
    const rules = policyRules(config.kindMaxSizes);
    expect(classifyDeclared({ filename: 'a.png', mimeType: null, size: 15e6 }, { ...options, allowedKinds: ['image'], rules }).maxSize).toBe(2e7);
    expect(() => loadConfig({ KIND_MAX_SIZES: 'fseq=huge' })).toThrow(/KIND_MAX_SIZES="fseq=huge": expected kind=size pairs/);
    expect(() => loadConfig({ KIND_MAX_SIZES: 'movies=1GB' })).toThrow(/KIND_MAX_SIZES/);
  });
});

describe('sanitizeFilename', () => {
  it.each([
    ['show.fseq', 'show.fseq'],
    ['../../etc/passwd', 'passwd'],
    ['C:\\Users\\me\\Desktop\\show.fseq', 'show.fseq'],
    ['dir/./..', 'dir'],
    ['../..', 'upload'],
    ['  spaced name.mp3  ', 'spaced name.mp3'],
    [null, 'upload'],
    ['🎄 Merry.fseq', '🎄 Merry.fseq'],
  ])('%j → %j', (raw, safe) => expect(sanitizeFilename(raw)).toBe(safe));

  it.each(['a\u0000b.fseq', 'line\r\nbreak.mp3', 'tab\there.mp3', 'del\u007f.png', 'sep\u2028.xsq'])('refuses control characters in %j', (raw) => {
    expect(() => sanitizeFilename(raw)).toThrow(/control characters/);
  });

  it('shortens names over 255 bytes and keeps the extension', () => {
    const name = sanitizeFilename(`${'é'.repeat(300)}.fseq`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
    expect(name.endsWith('.fseq')).toBe(true);
  });
});
