import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAudio, type AudioMetadata } from '../../tasks/parsers/audio.js';
import { ParseError } from '../../tasks/parsers/errors.js';
import { buildPng, chunked } from '../support/fixture-builders.js';

const path = (name: string): string => fileURLToPath(new URL(`../fixtures/audio/${name}`, import.meta.url));

async function parseFixture(name: string): Promise<AudioMetadata> {
  const file = path(name);
  return parseAudio(createReadStream(file), { size: statSync(file).size });
}

async function parseError(promise: Promise<unknown>): Promise<ParseError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ParseError);
    return err as ParseError;
  }
  throw new Error('expected a ParseError, parseAudio resolved');
}

describe('parseAudio: real fixtures (values from music-metadata’s own tests)', () => {
  it('mm_id3v2.3.mp3', async () => {
    const m = await parseFixture('mm_id3v2.3.mp3');
    expect(m).toMatchObject({
      container: 'MPEG',
      codec: 'MPEG 1 Layer 3',
      sampleRate: 44100,
      channels: 2,
      bitrate: 128000,
      codecProfile: 'CBR',
      lossless: false,
      title: 'Home',
      album: 'Friday Night Lights [Original Movie Soundtrack]',
    });
    expect(m.durationSec).toBeCloseTo(0.7836734693877551, 10);
    // Hundreds of identical tag warnings are collapsed and made printable.
    expect(m.warnings.length).toBeLessThanOrEqual(21);
    expect(m.warnings.join('\n')).not.toMatch(/\u0000/);
    expect(m.warnings.some((w) => /\(×\d+\)$/.test(w))).toBe(true);
  });

  it('mm_id3v2.4.mp3', async () => {
    const m = await parseFixture('mm_id3v2.4.mp3');
    expect(m).toMatchObject({ codec: 'MPEG 1 Layer 3', sampleRate: 44100, channels: 2, bitrate: 128000, title: 'Home' });
    expect(m.durationSec).toBeCloseTo(0.7836734693877551, 6);
  });

  it('mm_riff_adobe_audition.wav', async () => {
    const m = await parseFixture('mm_riff_adobe_audition.wav');
    expect(m).toMatchObject({
      container: 'WAVE',
      codec: 'PCM',
      bitsPerSample: 24,
      sampleRate: 48000,
      channels: 2,
      bitrate: 2304000,
      numberOfSamples: 13171,
      lossless: true,
      title: 'The Magic Flute',
    });
    expect(m.durationSec).toBeCloseTo(0.27439583333333334, 12);
  });

  it('mm_nirvana-2sec.vorbis.ogg', async () => {
    const m = await parseFixture('mm_nirvana-2sec.vorbis.ogg');
    expect(m).toMatchObject({ container: 'Ogg', sampleRate: 44100, channels: 2, bitrate: 64000, title: 'In Bloom', artist: 'Nirvana' });
    expect(m.codec).toMatch(/Vorbis/);
    expect(m.durationSec).toBeCloseTo(2.0, 3);
  });

  it('mm_nirvana-2sec.opus.ogg', async () => {
    const m = await parseFixture('mm_nirvana-2sec.opus.ogg');
    expect(m).toMatchObject({ container: 'Ogg', codec: 'Opus', channels: 2, numberOfSamples: 96000 });
    expect(m.durationSec).toBeCloseTo(2.0, 2);
  });

  it('mm_flac.flac (truncated on purpose; duration from STREAMINFO)', async () => {
    const m = await parseFixture('mm_flac.flac');
    expect(m).toMatchObject({ container: 'FLAC', codec: 'FLAC', bitsPerSample: 16, sampleRate: 44100, channels: 2, lossless: true });
    expect(m.durationSec).toBeCloseTo(271.7733333, 5);
  });

  it('mm_04_Long_Drive.flac', async () => {
    const m = await parseFixture('mm_04_Long_Drive.flac');
    expect(m).toMatchObject({ container: 'FLAC', title: 'Long Drive', artist: 'Jason Mraz' });
    expect(Math.abs((m.bitrate ?? 0) - 496000)).toBeLessThanOrEqual(500);
  });

  it('mm_Apple__voice_memo.m4a', async () => {
    const m = await parseFixture('mm_Apple__voice_memo.m4a');
    expect(m.container).toMatch(/^M4A/);
    expect(m.codec).toMatch(/AAC/);
    expect(m.sampleRate).toBe(48000);
    expect(m.durationSec).toBeCloseTo(1.024, 3);
  });

  it('mm_issue-318.m4a: trailing garbage is a warning, not a failure', async () => {
    const m = await parseFixture('mm_issue-318.m4a');
    expect(m.container).toMatch(/^M4A/);
    expect(m.codec).toMatch(/AAC/);
    expect(m).toMatchObject({ sampleRate: 44100, channels: 2 });
    expect(m.warnings.length).toBeGreaterThan(0);
  });

  it('mm_notags.mp3', async () => {
    const m = await parseFixture('mm_notags.mp3');
    expect(m).toMatchObject({ container: 'MPEG', codec: 'MPEG 2 Layer 3', title: null, artist: null, album: null });
    expect(m.durationSec).toBeGreaterThan(0);
  });
});

describe('parseAudio: sources and failures', () => {
  it('accepts an AsyncIterable in tiny chunks', async () => {
    const bytes = readFileSync(path('mm_nirvana-2sec.vorbis.ogg'));
    const m = await parseAudio(chunked(bytes, 333), { size: bytes.length, mimeType: 'audio/ogg' });
    expect(m).toMatchObject({ container: 'Ogg', title: 'In Bloom' });
  });

  it('turns garbage into AUDIO_UNPARSEABLE', async () => {
    const garbage = Buffer.alloc(8192);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 193 + 7) & 0xff;
    const e = await parseError(parseAudio(Readable.from([garbage]), { size: garbage.length }));
    expect(e.code).toBe('AUDIO_UNPARSEABLE');
    expect(e.message.length).toBeGreaterThan(20);
  });

  it('accepts an object-mode Readable holding whole buffers', async () => {
    const bytes = readFileSync(path('mm_id3v2.3.mp3'));
    const m = await parseAudio(Readable.from([bytes.subarray(0, 50_000), bytes.subarray(50_000)]), { size: bytes.length });
    expect(m).toMatchObject({ codec: 'MPEG 1 Layer 3', title: 'Home' });
  });

  it('does not let a declared type or a .mp3 file name turn garbage into audio', async () => {
    const garbage = Buffer.alloc(200_000);
    let x = 1;
    for (let i = 0; i < garbage.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      garbage[i] = x >>> 24;
    }
    const dir = mkdtempSync(join(tmpdir(), 'audio-test-'));
    try {
      const file = join(dir, 'song.mp3');
      writeFileSync(file, garbage);
      const e = await parseError(parseAudio(createReadStream(file), { size: garbage.length, mimeType: 'audio/mpeg' }));
      expect(e.code).toBe('AUDIO_UNPARSEABLE');
      expect(e.message).toContain('declared audio/mpeg');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns a non-audio file (PNG) into AUDIO_UNPARSEABLE', async () => {
    const png = buildPng();
    expect((await parseError(parseAudio(chunked(png, 64), { size: png.length }))).code).toBe('AUDIO_UNPARSEABLE');
  });

  it('turns an empty file into AUDIO_UNPARSEABLE', async () => {
    expect((await parseError(parseAudio(chunked(new Uint8Array(0)), { size: 0 }))).code).toBe('AUDIO_UNPARSEABLE');
  });

  it('turns a file cut inside its header into AUDIO_UNPARSEABLE', async () => {
    for (const name of ['mm_riff_adobe_audition.wav', 'mm_flac.flac', 'mm_Apple__voice_memo.m4a', 'mm_nirvana-2sec.opus.ogg']) {
      const head = readFileSync(path(name)).subarray(0, 12);
      const e = await parseError(parseAudio(chunked(head, 5), { size: head.length }));
      expect(e.code, name).toBe('AUDIO_UNPARSEABLE');
    }
  });

  it('rethrows errors of the source stream itself unchanged', async () => {
    const boom = new Error('ECONNRESET from storage');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield readFileSync(path('mm_notags.mp3')).subarray(0, 1000);
      throw boom;
    }
    await expect(parseAudio(failing(), {})).rejects.toBe(boom);
  });
});
