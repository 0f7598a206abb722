/**
 * A streaming decoder of WAV (RIFF/RF64 WAVE) PCM for the waveform: integer PCM of 8, 16, 24 or
 * 32 bits and IEEE float of 32 or 64 bits, plain or WAVE_FORMAT_EXTENSIBLE. Bytes are taken in any
 * slices; only a partial sample frame and the header are held between slices. Pure: bytes in,
 * samples (-1..1 per channel) out, with the shape of the WebAssembly decoders' results.
 */
import { PreviewInputError } from './errors.js';

export interface DecodedPcm {
  channelData: Float32Array[];
  samplesDecoded: number;
  sampleRate: number;
}

interface Format {
  channels: number;
  sampleRate: number;
  bytesPerSample: number;
  float: boolean;
}

const PCM = 1;
const IEEE_FLOAT = 3;
const EXTENSIBLE = 0xfffe;
/** The header bytes held while looking for the data chunk: more means it is not a WAV we read. */
const MAX_HEADER = 1024 * 1024;

const ascii = (bytes: Uint8Array, at: number) => String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!);

export class WavDecoder {
  readonly ready = Promise.resolve();
  private header: Uint8Array = new Uint8Array(0);
  private format: Format | null = null;
  /** Data bytes left in the data chunk (RF64 and streamed files may say 0 or all-ones: to the end). */
  private dataLeft = Infinity;
  private inData = false;
  private carry: Uint8Array = new Uint8Array(0);

  decode(input: Uint8Array): DecodedPcm {
    let bytes = input;
    if (!this.inData) {
      bytes = this.readHeader(input);
      if (!this.inData) return this.empty();
    }
    if (this.carry.length > 0) {
      const joined = new Uint8Array(this.carry.length + bytes.length);
      joined.set(this.carry);
      joined.set(bytes, this.carry.length);
      bytes = joined;
    }
    if (bytes.length > this.dataLeft) bytes = bytes.subarray(0, this.dataLeft);
    const format = this.format!;
    const frameBytes = format.bytesPerSample * format.channels;
    const frames = Math.floor(bytes.length / frameBytes);
    this.carry = bytes.slice(frames * frameBytes);
    this.dataLeft -= frames * frameBytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const channelData = Array.from({ length: format.channels }, () => new Float32Array(frames));
    for (let frame = 0; frame < frames; frame++) {
      for (let channel = 0; channel < format.channels; channel++) {
        channelData[channel]![frame] = sampleAt(view, (frame * format.channels + channel) * format.bytesPerSample, format);
      }
    }
    return { channelData, samplesDecoded: frames, sampleRate: format.sampleRate };
  }

  free(): void {
    this.header = new Uint8Array(0);
    this.carry = new Uint8Array(0);
  }

  private empty(): DecodedPcm {
    return { channelData: [], samplesDecoded: 0, sampleRate: this.format?.sampleRate ?? 0 };
  }

  /** Walks the chunks up to `data`; returns the bytes after its header (or none yet). */
  private readHeader(input: Uint8Array): Uint8Array {
    const bytes = new Uint8Array(this.header.length + input.length);
    bytes.set(this.header);
    bytes.set(input, this.header.length);
    if (bytes.length > MAX_HEADER) throw new PreviewInputError('WAV_NO_DATA', 'no audio data chunk in the first 1 MiB of the WAV file');
    this.header = bytes;
    if (bytes.length < 12) return new Uint8Array(0);
    const riff = ascii(bytes, 0);
    if (!['RIFF', 'RF64', 'BW64'].includes(riff) || ascii(bytes, 8) !== 'WAVE') {
      throw new PreviewInputError('WAV_NOT_RIFF', 'the file is not a RIFF WAVE file');
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = 12; at + 8 <= bytes.length; ) {
      const id = ascii(bytes, at);
      const size = view.getUint32(at + 4, true);
      if (id === 'data') {
        if (!this.format) throw new PreviewInputError('WAV_NO_FORMAT', 'the WAV data chunk comes before its format chunk');
        this.inData = true;
        this.dataLeft = size === 0 || size === 0xffffffff || riff !== 'RIFF' ? Infinity : size;
        const rest = bytes.slice(at + 8);
        this.header = new Uint8Array(0);
        return rest;
      }
      if (at + 8 + size > bytes.length) return new Uint8Array(0); // the chunk is not all here yet
      if (id === 'fmt ') this.format = parseFormat(view, at + 8, size);
      at += 8 + size + (size & 1);
    }
    return new Uint8Array(0);
  }
}

function parseFormat(view: DataView, at: number, size: number): Format {
  if (size < 16) throw new PreviewInputError('WAV_BAD_FORMAT', 'the WAV format chunk is too short');
  let tag = view.getUint16(at, true);
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const bits = view.getUint16(at + 14, true);
  // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
  if (tag === EXTENSIBLE && size >= 26) tag = view.getUint16(at + 24, true);
  const float = tag === IEEE_FLOAT;
  const supported = (tag === PCM && [8, 16, 24, 32].includes(bits)) || (float && (bits === 32 || bits === 64));
  if (!supported || channels === 0 || sampleRate === 0) {
    throw new PreviewInputError('AUDIO_FORMAT_UNSUPPORTED', `no waveform decoder for this WAV encoding (format ${tag}, ${bits} bits)`);
  }
  return { channels, sampleRate, bytesPerSample: bits / 8, float };
}

function sampleAt(view: DataView, at: number, format: Format): number {
  if (format.float) return format.bytesPerSample === 4 ? view.getFloat32(at, true) : view.getFloat64(at, true);
  switch (format.bytesPerSample) {
    case 1:
      return (view.getUint8(at) - 128) / 128;
    case 2:
      return view.getInt16(at, true) / 32768;
    case 3:
      return ((view.getInt8(at + 2) << 16) | (view.getUint8(at + 1) << 8) | view.getUint8(at)) / 8388608;
    default:
      return view.getInt32(at, true) / 2147483648;
  }
}
