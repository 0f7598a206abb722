/**
 * The "light map" of an FSEQ sequence: a grayscale PNG with time left to right (one column per
 * sampled frame) and the frame's channels top to bottom (one row per group of channels, in the
 * order the file stores them — with sparse ranges, the ranges back to back), each cell the mean
 * channel value; plus the overall brightness of each sampled frame.
 *
 * Pure: the file's bytes as a stream in, data out. Work is bounded whatever the file's size: at
 * most `maxColumns` frames are decoded (evenly spaced), and a compressed block holding none of
 * them is skipped without being decompressed. Blocks are decoded one at a time (zstd with fzstd,
 * zlib with node:zlib), so memory is one block plus the picture.
 */
import { inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { PNG } from 'pngjs';
import { parseFseqHeader, type FseqHeader, type FseqSparseRange } from '../parsers/fseq.js';
import { ByteCursor } from './byte-cursor.js';
import { PreviewInputError } from './errors.js';

export interface LightMapOptions {
  /** Columns (sampled frames) at most. */
  maxColumns: number;
  /** Rows (channel groups) at most. */
  maxRows: number;
}

export const LIGHT_MAP_DEFAULTS: LightMapOptions = { maxColumns: 1024, maxRows: 512 };

/** The per-frame brightness series (the JSON preview). */
export interface BrightnessSeries {
  frameCount: number;
  stepTimeMs: number;
  channelCount: number;
  sparseRanges: FseqSparseRange[];
  /** Index of each sampled frame, ascending. */
  frames: number[];
  /** Mean channel value of each sampled frame, 0 (dark) to 1 (every channel full). */
  brightness: number[];
}

export interface LightMap {
  png: Buffer;
  width: number;
  height: number;
  /** Channels each row averages (the last row may hold fewer). */
  channelsPerRow: number;
  series: BrightnessSeries;
}

/** Block index entries of a compressed v2 file: where each block's frames start and its bytes. */
interface Block {
  firstFrame: number;
  endFrame: number;
  length: number;
}

const V2_BLOCK_INDEX = 32;

function blocksOf(head: Uint8Array, header: FseqHeader): Block[] {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const used: Array<{ firstFrame: number; length: number }> = [];
  for (let i = 0; i < header.blockSlots; i++) {
    const at = V2_BLOCK_INDEX + i * 8;
    const length = view.getUint32(at + 4, true);
    if (length > 0) used.push({ firstFrame: view.getUint32(at, true), length });
  }
  return used.map((block, i) => ({ ...block, endFrame: used[i + 1]?.firstFrame ?? header.frameCount }));
}

/** `count` frame indices spread evenly over `frameCount` frames (all of them when count ≥ frameCount). */
export function sampleFrames(frameCount: number, count: number): number[] {
  const n = Math.min(frameCount, count);
  return Array.from({ length: n }, (_, i) => Math.floor((i * frameCount) / n));
}

function decompressBlock(header: FseqHeader, block: Uint8Array, index: number): Uint8Array {
  try {
    return header.compression === 'zstd' ? zstdDecompress(block) : inflateSync(block);
  } catch (error) {
    throw new PreviewInputError('FSEQ_BAD_BLOCK', `FSEQ ${header.compression} block ${index} cannot be decompressed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function readHead(cursor: ByteCursor, fileSize: number): Promise<{ head: Uint8Array; header: FseqHeader }> {
  const start = await cursor.take(8);
  const isEseq = start.length >= 4 && String.fromCharCode(...start.subarray(0, 4)) === 'ESEQ';
  const offset = isEseq ? 20 : start.length >= 6 ? start[4]! | (start[5]! << 8) : start.length;
  const rest = offset > start.length ? await cursor.take(offset - start.length) : new Uint8Array(0);
  const head = new Uint8Array(start.length + rest.length);
  head.set(start);
  head.set(rest, start.length);
  // Throws a ParseError for a damaged header; the first 8 bytes may already hold channel data
  // when the offset is tiny, which the parser rejects.
  return { head, header: parseFseqHeader(head, { fileSize }) };
}

/**
 * Calls `onFrame` for each sampled frame, in order, with that frame's channel bytes. Frames the
 * sample skips are skipped in the stream; so are compressed blocks holding no sampled frame.
 */
async function forEachSampledFrame(
  cursor: ByteCursor,
  head: Uint8Array,
  header: FseqHeader,
  frames: number[],
  onFrame: (frame: Uint8Array, sample: number) => void,
): Promise<void> {
  const channels = header.channelCount;
  const truncated = (what: string) =>
    new PreviewInputError('FSEQ_TRUNCATED', `FSEQ channel data ends early: ${what} runs past the end of the file`);

  if (header.compression === 'none') {
    let next = 0; // the frame the cursor stands at
    for (const [sample, frame] of frames.entries()) {
      const gap = (frame - next) * channels;
      if ((await cursor.skip(gap)) < gap) throw truncated(`frame ${frame}`);
      const bytes = await cursor.take(channels);
      if (bytes.length < channels) throw truncated(`frame ${frame}`);
      onFrame(bytes, sample);
      next = frame + 1;
    }
    return;
  }

  let sample = 0;
  for (const [index, block] of blocksOf(head, header).entries()) {
    if (sample >= frames.length) break;
    if (frames[sample]! >= block.endFrame) {
      if ((await cursor.skip(block.length)) < block.length) throw truncated(`block ${index}`);
      continue;
    }
    const compressed = await cursor.take(block.length);
    if (compressed.length < block.length) throw truncated(`block ${index}`);
    const data = decompressBlock(header, compressed, index);
    const needed = (block.endFrame - block.firstFrame) * channels;
    if (data.length < needed) {
      throw new PreviewInputError(
        'FSEQ_BAD_BLOCK',
        `FSEQ block ${index} holds ${data.length} bytes once decompressed, but frames ${block.firstFrame}–${block.endFrame - 1} need ${needed}: the block index does not match the data`,
      );
    }
    for (; sample < frames.length && frames[sample]! < block.endFrame; sample++) {
      const at = (frames[sample]! - block.firstFrame) * channels;
      onFrame(data.subarray(at, at + channels), sample);
    }
  }
  if (sample < frames.length) {
    throw new PreviewInputError('FSEQ_BAD_BLOCK_INDEX', `FSEQ block index covers frames up to ${frames[sample]} only of ${header.frameCount}`);
  }
}

const round4 = (value: number) => Math.round(value * 10_000) / 10_000;

/** Renders the light map and brightness series of an FSEQ/ESEQ file streamed in `source`. */
export async function renderFseqLightMap(
  source: AsyncIterable<Uint8Array>,
  fileSize: number,
  options: LightMapOptions = LIGHT_MAP_DEFAULTS,
): Promise<LightMap> {
  const cursor = new ByteCursor(source);
  try {
    const { head, header } = await readHead(cursor, fileSize);
    const frames = sampleFrames(header.frameCount, options.maxColumns);
    const channels = header.channelCount;
    const channelsPerRow = Math.ceil(channels / Math.min(channels, options.maxRows));
    const width = frames.length;
    const height = Math.ceil(channels / channelsPerRow);
    const pixels = Buffer.alloc(width * height);
    const brightness = new Array<number>(width).fill(0);

    await forEachSampledFrame(cursor, head, header, frames, (frame, x) => {
      let total = 0;
      for (let row = 0; row < height; row++) {
        const from = row * channelsPerRow;
        const to = Math.min(channels, from + channelsPerRow);
        let sum = 0;
        for (let c = from; c < to; c++) sum += frame[c]!;
        total += sum;
        pixels[row * width + x] = Math.round(sum / (to - from));
      }
      brightness[x] = round4(total / channels / 255);
    });

    const png = new PNG({ width, height, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
    png.data = pixels;
    return {
      png: PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }),
      width,
      height,
      channelsPerRow,
      series: {
        frameCount: header.frameCount,
        stepTimeMs: header.stepTimeMs,
        channelCount: channels,
        sparseRanges: header.sparseRanges,
        frames,
        brightness,
      },
    };
  } finally {
    await cursor.close();
  }
}
