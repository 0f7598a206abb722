import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { renderAudioPeaks } from '../../tasks/previews/audio-peaks.js';
import { PreviewInputError } from '../../tasks/previews/errors.js';
import { chunked } from '../support/fixture-builders.js';

const fixture = (name: string) => readFileSync(`/work/shared/fixtures/audio/${name}`);

/**
 * MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, stereo) whose side information is all zero: no
 * Huffman data, so they decode to exact silence. Built by hand: nothing here encodes MP3.
 */
function silentMp3Frames(count: number): Buffer {
  const frame = Buffer.alloc(417);
  frame.set([0xff, 0xfb, 0x90, 0x04]);
  return Buffer.concat(Array.from({ length: count }, () => frame));
}
const FRAME_SEC = 1152 / 44100;

describe('audio waveform peaks', () => {
  it.each([
    ['mm_id3v2.3.mp3', 'mp3', 0.7318],
    ['mm_flac.flac', 'flac', 1.9505],
    ['mm_nirvana-2sec.vorbis.ogg', 'ogg', 2],
  ])('%s: about 1,000 pairs over the real duration, in audiowaveform layout', async (name, format, durationSec) => {
    const { waveform, png } = await renderAudioPeaks(chunked(fixture(name), 10_000), { format, durationSec });
    expect(waveform).toMatchObject({ version: 2, channels: 1, bits: 16, sample_rate: 44100 });
    // Decoders drop the encoder's padding, so a few pairs' worth less than the container's duration.
    expect(waveform.length).toBeGreaterThan(970);
    expect(waveform.length).toBeLessThanOrEqual(1000);
    expect(waveform.data).toHaveLength(waveform.length * 2);
    for (let i = 0; i < waveform.data.length; i += 2) expect(waveform.data[i]).toBeLessThanOrEqual(waveform.data[i + 1]!);
    expect(Math.max(...waveform.data)).toBeGreaterThan(0);
    const image = PNG.sync.read(png);
    expect([image.width, image.height]).toEqual([waveform.length, 128]);
  });

  it('silence in the middle of the music shows as a gap of zero pairs between non-zero ones', async () => {
    // The fixture is quiet (peaks near 10 of 32767), so the gap is exact zeros against small values.
    const music = fixture('mm_id3v2.3.mp3');
    const silent = 80;
    const durationSec = 2 * 0.7318 + silent * FRAME_SEC;
    const file = Buffer.concat([music, silentMp3Frames(silent), music]);
    const { waveform, png } = await renderAudioPeaks(chunked(file, 4096), { format: 'mp3', durationSec });
    const peak = (from: number, to: number) => Math.max(...waveform.data.slice(from * 2, to * 2).map(Math.abs));
    const pairsPerSec = waveform.length / durationSec;
    const gap = [Math.ceil((0.7318 + 2 * FRAME_SEC) * pairsPerSec), Math.floor((0.7318 + (silent - 2) * FRAME_SEC) * pairsPerSec)] as const;
    expect(peak(gap[0], gap[1])).toBe(0);
    expect(peak(0, gap[0] - 20)).toBeGreaterThan(0);
    expect(peak(gap[1] + 20, waveform.length)).toBeGreaterThan(0);
    // The picture: a silent column is the one pixel of the zero line.
    const image = PNG.sync.read(png);
    const lit = (x: number) => Array.from({ length: image.height }, (_, y) => image.data[(y * image.width + x) * 4]!).filter((v) => v > 0).length;
    expect(lit(Math.floor((gap[0] + gap[1]) / 2))).toBe(1);
  });

  it('undecodable bytes, an unknown format or no duration are PreviewInputErrors', async () => {
    const garbage = Buffer.alloc(50_000, 0x11);
    await expect(renderAudioPeaks(chunked(garbage, 4096), { format: 'flac', durationSec: 3 })).rejects.toBeInstanceOf(PreviewInputError);
    await expect(renderAudioPeaks(chunked(garbage), { format: 'm4a', durationSec: 3 })).rejects.toBeInstanceOf(PreviewInputError);
    await expect(renderAudioPeaks(chunked(fixture('mm_flac.flac')), { format: 'flac', durationSec: null })).rejects.toBeInstanceOf(PreviewInputError);
  });
});
