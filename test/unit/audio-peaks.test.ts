import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderAudioPeaks } from '../../tasks/previews/audio-peaks.js';
import { PreviewInputError } from '../../tasks/previews/errors.js';
import { decodeWithFfmpeg, ffmpegVersion } from '../../tasks/previews/ffmpeg-decoder.js';
import { chunked } from '../support/fixture-builders.js';
import { waitFor } from '../support/ports.js';

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

  it('Ogg Opus (decoded at 48 kHz): about 1,000 pairs over its 2 s, louder than silence', async () => {
    const { waveform, png } = await renderAudioPeaks(chunked(fixture('mm_nirvana-2sec.opus.ogg'), 10_000), { format: 'opus', durationSec: 2 });
    expect(waveform).toMatchObject({ version: 2, channels: 1, bits: 16, sample_rate: 48000, samples_per_pixel: 96 });
    expect(waveform.length).toBeGreaterThan(970);
    expect(waveform.length).toBeLessThanOrEqual(1000);
    expect(Math.max(...waveform.data)).toBeGreaterThan(1000);
    expect(PNG.sync.read(png).width).toBe(waveform.length);
  });

  it('WAV: 24-bit PCM (a real file) and generated 16-bit PCM with silence in the middle, in odd slices', async () => {
    const real = await renderAudioPeaks(chunked(fixture('mm_riff_adobe_audition.wav'), 1001), { format: 'wav', durationSec: 79026 / 6 / 48000 });
    // 13,171 stereo frames: 14 per pair (whole samples, rounded up) make 941 pairs.
    expect(real.waveform).toMatchObject({ sample_rate: 48000, samples_per_pixel: 14, length: 941 });
    expect(Math.max(...real.waveform.data)).toBeGreaterThan(0);

    // 3 s of mono 8 kHz: a full-scale square wave, silence, then a half-scale one.
    const rate = 8000;
    const samples = new Int16Array(3 * rate).map((_, i) => (i < rate ? (i % 16 < 8 ? 32767 : -32768) : i < 2 * rate ? 0 : i % 16 < 8 ? 16384 : -16384));
    const header = Buffer.alloc(44);
    header.write('RIFF', 0, 'ascii');
    header.writeUInt32LE(36 + samples.byteLength, 4);
    header.write('WAVEfmt ', 8, 'ascii');
    header.writeUInt32LE(16, 16);
    header.writeUInt16LE(1, 20);
    header.writeUInt16LE(1, 22);
    header.writeUInt32LE(rate, 24);
    header.writeUInt32LE(rate * 2, 28);
    header.writeUInt16LE(2, 32);
    header.writeUInt16LE(16, 34);
    header.write('data', 36, 'ascii');
    header.writeUInt32LE(samples.byteLength, 40);
    const wav = Buffer.concat([header, Buffer.from(samples.buffer)]);
    const { waveform } = await renderAudioPeaks(chunked(wav, 333), { format: 'wav', durationSec: 3 }, { pairs: 300, imageHeight: 64 });
    expect(waveform).toMatchObject({ sample_rate: 8000, samples_per_pixel: 80, length: 300 });
    // Each pair's min and max, to within the rounding of 16-bit values.
    const near = (x: number, [min, max]: [number, number]) => {
      expect(Math.abs(waveform.data[2 * x]! - min)).toBeLessThanOrEqual(1);
      expect(Math.abs(waveform.data[2 * x + 1]! - max)).toBeLessThanOrEqual(1);
    };
    near(50, [-32767, 32767]);
    near(150, [0, 0]);
    near(250, [-16384, 16384]);
  });

  it('AAC in MP4 with ffmpeg turned off says why it has no waveform', async () => {
    const error = await renderAudioPeaks(chunked(fixture('mm_Apple__voice_memo.m4a')), { format: 'm4a', durationSec: 1.024 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreviewInputError);
    expect((error as PreviewInputError).code).toBe('AUDIO_DECODER_DISABLED');
    expect((error as Error).message).toBe('no waveform decoder for m4a audio (ffmpeg is turned off: FFMPEG_PATH=off)');
  });

  it('undecodable bytes, an unknown format or no duration are PreviewInputErrors', async () => {
    const garbage = Buffer.alloc(50_000, 0x11);
    await expect(renderAudioPeaks(chunked(garbage, 4096), { format: 'flac', durationSec: 3 })).rejects.toBeInstanceOf(PreviewInputError);
    await expect(renderAudioPeaks(chunked(garbage), { format: 'm4a', durationSec: 3 })).rejects.toBeInstanceOf(PreviewInputError);
    await expect(renderAudioPeaks(chunked(fixture('mm_flac.flac')), { format: 'flac', durationSec: null })).rejects.toBeInstanceOf(PreviewInputError);
  });
});

/** The ffmpeg children of this process still running (Linux /proc). */
function ffmpegChildren(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        // pid (comm) state ppid …
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return stat.includes('(ffmpeg)') && Number(fields[1]) === process.pid && fields[0] !== 'Z';
      } catch {
        return false; // gone while listing
      }
    })
    .map(Number);
}

describe('AAC and ALAC waveforms through ffmpeg', () => {
  const ffmpeg = { path: 'ffmpeg' };
  let dir: string;
  let spool: string;
  /** 3 s at 44.1 kHz stereo: a half-scale 440 Hz tone, 1 s of digital silence, the tone again. */
  const generated: Record<string, Buffer> = {};

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'audio-peaks-ffmpeg-'));
    spool = path.join(dir, 'spool');
    mkdirSync(spool);
    const channel = 'if(between(t,1,2),0,0.5*sin(2*PI*440*t))';
    const tone = ['-f', 'lavfi', '-i', `aevalsrc='${channel}|${channel}':s=44100:d=3`];
    const encode = (name: string, args: string[]) => {
      execFileSync('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...tone, ...args, path.join(dir, name)]);
      generated[name] = readFileSync(path.join(dir, name));
    };
    encode('tone.m4a', ['-c:a', 'aac', '-b:a', '128k']); // ffmpeg writes moov after the samples
    encode('tone-faststart.m4a', ['-c:a', 'aac', '-b:a', '128k', '-movflags', '+faststart']);
    encode('tone.aac', ['-c:a', 'aac', '-b:a', '128k', '-f', 'adts']);
    encode('tone-alac.m4a', ['-c:a', 'alac']);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the Apple voice memo (AAC, 48 kHz, index after the samples): about 1,000 pairs over its 1.024 s', async () => {
    const { waveform, png } = await renderAudioPeaks(chunked(fixture('mm_Apple__voice_memo.m4a'), 1000), { format: 'm4a', durationSec: 1.024 }, undefined, { ffmpeg });
    expect(waveform).toMatchObject({ version: 2, channels: 1, bits: 16, sample_rate: 48000, samples_per_pixel: 50 });
    // The decoder drops the encoder's priming samples: a little less than the container's duration.
    expect(waveform.length).toBeGreaterThan(970);
    expect(waveform.length).toBeLessThanOrEqual(1000);
    expect(waveform.data).toHaveLength(waveform.length * 2);
    for (let i = 0; i < waveform.data.length; i += 2) expect(waveform.data[i]).toBeLessThanOrEqual(waveform.data[i + 1]!);
    expect(Math.max(...waveform.data)).toBeGreaterThan(0);
    expect(PNG.sync.read(png).width).toBe(waveform.length);
  });

  it('mm_issue-318.m4a (its sample table points past the end of the file): no peaks, ffmpeg\'s reason', async () => {
    const error = await renderAudioPeaks(chunked(fixture('mm_issue-318.m4a'), 10_000), { format: 'm4a', durationSec: 620 }, undefined, { ffmpeg }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreviewInputError);
    expect((error as PreviewInputError).code).toBe('AUDIO_UNDECODABLE');
    expect((error as Error).message).toMatch(/^ffmpeg cannot decode the m4a audio \(exit \d+\): .*partial file/);
    expect((error as Error).message).not.toMatch(/0x[0-9a-f]{6,}/);
  });

  it.each([
    ['tone.m4a', 'm4a'],
    ['tone-faststart.m4a', 'm4a'],
    ['tone.aac', 'aac'],
    ['tone-alac.m4a', 'm4a'],
  ])('%s (generated by ffmpeg): the silent second shows as a gap between the loud ones', async (name, format) => {
    const { waveform } = await renderAudioPeaks(chunked(generated[name]!, 4096), { format, durationSec: 3 }, { pairs: 300, imageHeight: 64 }, { ffmpeg: { ...ffmpeg, tempDir: spool } });
    expect(waveform).toMatchObject({ sample_rate: 44100, samples_per_pixel: 441 });
    expect(waveform.length).toBeGreaterThan(290);
    const peak = (from: number, to: number) => Math.max(...waveform.data.slice(from * 2, to * 2).map(Math.abs));
    // Half scale is 16384; a lossy codec overshoots a little near the edges, never near silence.
    expect(peak(10, 90)).toBeGreaterThan(14000);
    expect(peak(110, 190)).toBeLessThan(30);
    expect(peak(210, 290)).toBeGreaterThan(14000);
    // A copy made for ffmpeg to seek in (the index after the samples) is removed.
    expect(readdirSync(spool)).toEqual([]);
  });

  it('garbage bytes named .m4a or .aac: a reason from ffmpeg, not a crash', async () => {
    const garbage = Buffer.alloc(50_000, 0x11);
    for (const format of ['m4a', 'aac']) {
      const error = await renderAudioPeaks(chunked(garbage, 4096), { format, durationSec: 3 }, undefined, { ffmpeg }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PreviewInputError);
      expect((error as PreviewInputError).code).toBe('AUDIO_UNDECODABLE');
      expect((error as Error).message).toMatch(new RegExp(`ffmpeg|no ${format} audio could be decoded`));
    }
  });

  it('an ffmpeg that cannot be run: a reason naming it', async () => {
    const error = await renderAudioPeaks(chunked(generated['tone.aac']!), { format: 'aac', durationSec: 3 }, undefined, { ffmpeg: { path: '/nonexistent/ffmpeg' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreviewInputError);
    expect((error as PreviewInputError).code).toBe('AUDIO_DECODER_UNAVAILABLE');
    expect((error as Error).message).toMatch(/^ffmpeg \(\/nonexistent\/ffmpeg\) cannot be run: .*ENOENT/);
    expect(await ffmpegVersion('/nonexistent/ffmpeg')).toBeNull();
    expect(await ffmpegVersion('ffmpeg')).toMatch(/^ffmpeg version /);
  });

  it('a reader that stops early, an abort and a stalled input each end the ffmpeg process', async () => {
    const early = decodeWithFfmpeg(chunked(generated['tone-faststart.m4a']!, 1024), 'm4a', ffmpeg);
    for await (const chunk of early.wav) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    await waitFor(() => ffmpegChildren().length === 0, { what: 'ffmpeg to be gone after an early stop' });

    const controller = new AbortController();
    const aborted = decodeWithFfmpeg(chunked(generated['tone.aac']!, 1024), 'aac', { ...ffmpeg, signal: controller.signal });
    const consume = async () => {
      for await (const _ of aborted.wav) controller.abort(new Error('stop here'));
    };
    await expect(consume()).rejects.toThrow('stop here');
    await waitFor(() => ffmpegChildren().length === 0, { what: 'ffmpeg to be gone after an abort' });

    // A few bytes, then nothing: ffmpeg waits for more and writes nothing.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    async function* stalled() {
      yield generated['tone.aac']!.subarray(0, 100);
      await held;
    }
    const stuck = decodeWithFfmpeg(stalled(), 'aac', { ...ffmpeg, idleTimeoutMs: 500 });
    const drain = async () => {
      for await (const _ of stuck.wav);
    };
    await expect(drain()).rejects.toThrow('ffmpeg wrote nothing for 0.5 s and was stopped');
    release();
    await waitFor(() => ffmpegChildren().length === 0, { what: 'ffmpeg to be gone after the idle timeout' });
  });
});
