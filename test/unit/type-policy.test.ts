import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { classifyDeclared, InvalidFilename, PolicyViolation, policyRules, sanitizeFilename } from '../../src/policy/type-policy.js';

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

  it.each([
    ['a right-to-left override', 'invoice\u202Etxt.exe', 'U+202E'],
    ['a left-to-right embedding', 'a\u202Ab.mp3', 'U+202A'],
    ['a pop directional formatting', 'a\u202Cb.mp3', 'U+202C'],
    ['a right-to-left isolate', 'a\u2067b.mp3', 'U+2067'],
    ['a pop directional isolate', 'song.mp3\u2069', 'U+2069'],
    ['a left-to-right mark', 'a\u200Eb.mp3', 'U+200E'],
    ['a right-to-left mark', 'a\u200Fb.mp3', 'U+200F'],
    ['an Arabic letter mark', 'a\u061Cb.mp3', 'U+061C'],
    ['a zero-width space', 'show\u200B.fseq', 'U+200B'],
    ['a zero-width joiner between ASCII letters', 'a\u200Db.png', 'U+200D'],
    ['a zero-width non-joiner at the start', '\u200Cshow.fseq', 'U+200C'],
    ['a zero-width joiner at the end', 'شعر\u200D', 'U+200D'],
    ['a word joiner', 'show\u2060.fseq', 'U+2060'],
    ['an invisible separator', 'a\u2063b.fseq', 'U+2063'],
    ['a byte-order mark', '\uFEFFshow.fseq', 'U+FEFF'],
    ['a soft hyphen', 'in\u00ADvoice.png', 'U+00AD'],
    ['a Mongolian vowel separator', 'a\u180Eb.png', 'U+180E'],
    ['a tag character outside a flag', 'show\u{E0041}.fseq', 'U+E0041'],
    ['an interlinear annotation anchor', 'a\uFFF9b.png', 'U+FFF9'],
  ])('refuses %s', (_label, raw, codePoint) => {
    expect(() => sanitizeFilename(raw)).toThrow(InvalidFilename);
    expect(() => sanitizeFilename(raw)).toThrow(`invisible or text-direction character (${codePoint})`);
  });

  it.each([
    ['Hebrew', 'שיר.mp3'],
    ['Arabic', 'أغنية.mp3'],
    ['Persian with a zero-width non-joiner', 'می\u200Cخواهم.mp3'],
    ['Devanagari with a zero-width joiner after a virama', 'क्\u200Dष.mp3'],
    ['an emoji ZWJ sequence', '👨\u200D👩\u200D👧 family.png'],
    ['an emoji ZWJ sequence with a variation selector', '❤\uFE0F\u200D🔥.png'],
    ['an emoji with a skin tone in a ZWJ sequence', '🧑🏽\u200D💻 work.png'],
    ['an emoji flag tag sequence', '🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} scotland.png'],
  ])('keeps %s', (_label, raw) => expect(sanitizeFilename(raw)).toBe(raw));

  it('shortens names over 255 bytes and keeps the extension', () => {
    const name = sanitizeFilename(`${'é'.repeat(300)}.fseq`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
    expect(name.endsWith('.fseq')).toBe(true);
  });
});
