/**
 * Waveform peaks of an audio file: `pairs` min/max pairs over its whole length (all channels
 * mixed into one), in audiowaveform's JSON layout (version 2, 16-bit values), and a PNG drawing
 * them. Pure: the file's bytes as a stream in, data out. Decoding streams through WebAssembly
 * decoders (mpg123 for MP3, libFLAC, libvorbis, libopus; WAV's PCM in TypeScript) in small slices, so memory stays flat whatever
 * the file's length; AAC and ALAC (MP4, ADTS) go through ffmpeg (./ffmpeg-decoder.ts) when it is
 * given. The duration (from the metadata) fixes the samples each pair covers.
 */
import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { OggVorbisDecoder } from '@wasm-audio-decoders/ogg-vorbis';
import { MPEGDecoder } from 'mpg123-decoder';
import { OggOpusDecoder } from 'ogg-opus-decoder';
import { PNG } from 'pngjs';
import { PreviewInputError } from './errors.js';
import { decodeWithFfmpeg, FFMPEG_FORMATS, type FfmpegOptions } from './ffmpeg-decoder.js';
import { WavDecoder } from './wav-decoder.js';

export interface PeaksOptions {
  /** Min/max pairs over the whole file. */
  pairs: number;
  /** Height of the waveform PNG (its width is `pairs`). */
  imageHeight: number;
}

export const PEAKS_DEFAULTS: PeaksOptions = { pairs: 1000, imageHeight: 128 };

/** Outside programs a render may use: null (or absent) when the operator turned them off. */
export interface ExternalDecoders {
  ffmpeg?: FfmpegOptions | null;
}

/** audiowaveform's JSON format (https://github.com/bbc/audiowaveform/blob/master/doc/DataFormat.md). */
export interface WaveformData {
  version: 2;
  channels: 1;
  sample_rate: number;
  samples_per_pixel: number;
  bits: 16;
  length: number;
  /** min, max, min, max, ... in -32768..32767. */
  data: number[];
}

export interface AudioPeaks {
  waveform: WaveformData;
  png: Buffer;
}

interface Decoded {
  channelData: Float32Array[];
  samplesDecoded: number;
  sampleRate: number;
}

interface StreamingDecoder {
  ready: Promise<void>;
  decode(data: Uint8Array): Decoded | Promise<Decoded>;
  free(): void;
}

const DECODERS: Record<string, () => StreamingDecoder> = {
  mp3: () => new MPEGDecoder(),
  flac: () => new FLACDecoder(),
  ogg: () => new OggVorbisDecoder(),
  opus: () => new OggOpusDecoder(),
  wav: () => new WavDecoder(),
};

/** The formats (as sniffed) this renderer decodes; those of FFMPEG_FORMATS only with ffmpeg. */
export const PEAK_FORMATS = [...Object.keys(DECODERS), ...Object.keys(FFMPEG_FORMATS)];

/** Compressed bytes handed to the decoder at once: a few seconds of audio, a few MB of samples. */
const SLICE = 64 * 1024;

const to16 = (value: number) => Math.max(-32768, Math.min(32767, Math.round(value * 32767)));

function drawWaveform(mins: Float32Array, maxs: Float32Array, length: number, height: number): Buffer {
  const png = new PNG({ width: Math.max(1, length), height, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  const pixels = Buffer.alloc(png.width * height);
  const rowOf = (value: number) => Math.round(((1 - Math.max(-1, Math.min(1, value))) / 2) * (height - 1));
  for (let x = 0; x < length; x++) {
    for (let y = rowOf(maxs[x]!); y <= rowOf(mins[x]!); y++) pixels[y * png.width + x] = 255;
  }
  png.data = pixels;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false });
}

/** Peaks of a `format` file (see PEAK_FORMATS) of about `durationSec` seconds, streamed in `source`. */
export async function renderAudioPeaks(
  source: AsyncIterable<Uint8Array>,
  audio: { format: string; durationSec: number | null },
  options: PeaksOptions = PEAKS_DEFAULTS,
  external: ExternalDecoders = {},
): Promise<AudioPeaks> {
  const viaFfmpeg = !(audio.format in DECODERS) && audio.format in FFMPEG_FORMATS;
  const create = viaFfmpeg ? () => new WavDecoder() : DECODERS[audio.format];
  if (!create) throw new PreviewInputError('AUDIO_FORMAT_UNSUPPORTED', `no waveform decoder for ${audio.format} audio`);
  if (viaFfmpeg && !external.ffmpeg) {
    throw new PreviewInputError('AUDIO_DECODER_DISABLED', `no waveform decoder for ${audio.format} audio (ffmpeg is turned off: FFMPEG_PATH=off)`);
  }
  if (!audio.durationSec || !(audio.durationSec > 0)) {
    throw new PreviewInputError('AUDIO_DURATION_UNKNOWN', 'the audio has no known duration to spread the waveform over');
  }
  // ffmpeg turns the file into WAV; the WAV decoder and the accumulator below do the rest.
  const ffmpeg = viaFfmpeg ? decodeWithFfmpeg(source, audio.format, external.ffmpeg!) : null;
  const input = ffmpeg?.wav ?? source;
  const decoder = create();
  await decoder.ready;
  const mins = new Float32Array(options.pairs).fill(Infinity);
  const maxs = new Float32Array(options.pairs).fill(-Infinity);
  let samplesPerPixel = 0;
  let sampleRate = 0;
  let position = 0; // samples (per channel) so far
  const add = (decoded: Decoded) => {
    if (decoded.samplesDecoded === 0) return;
    if (samplesPerPixel === 0) {
      sampleRate = decoded.sampleRate;
      samplesPerPixel = Math.max(1, Math.ceil((audio.durationSec! * sampleRate) / options.pairs));
    }
    for (let i = 0; i < decoded.samplesDecoded; i++, position++) {
      // A duration a little short of the real one: the tail goes into the last pair.
      const x = Math.min(options.pairs - 1, Math.floor(position / samplesPerPixel));
      for (const channel of decoded.channelData) {
        const value = channel[i]!;
        if (value < mins[x]!) mins[x] = value;
        if (value > maxs[x]!) maxs[x] = value;
      }
    }
  };
  try {
    for await (const chunk of input) {
      for (let at = 0; at < chunk.length; at += SLICE) add(await decoder.decode(chunk.subarray(at, at + SLICE)));
    }
    const flushable = decoder as Partial<{ flush(): Promise<Decoded> }>;
    if (flushable.flush) add(await flushable.flush());
  } finally {
    decoder.free();
  }
  if (position === 0) {
    const said = ffmpeg?.diagnostics();
    throw new PreviewInputError('AUDIO_UNDECODABLE', `no ${audio.format} audio could be decoded from the file${said ? ` (ffmpeg: ${said})` : ''}`);
  }

  const length = Math.min(options.pairs, Math.ceil(position / samplesPerPixel));
  const data: number[] = [];
  for (let x = 0; x < length; x++) data.push(to16(mins[x]!), to16(maxs[x]!));
  return {
    waveform: { version: 2, channels: 1, sample_rate: sampleRate, samples_per_pixel: samplesPerPixel, bits: 16, length, data },
    png: drawWaveform(mins, maxs, length, options.imageHeight),
  };
}
