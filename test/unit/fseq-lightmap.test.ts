import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { ParseError } from '../../tasks/parsers/errors.js';
import { PreviewInputError } from '../../tasks/previews/errors.js';
import { renderFseqLightMap, sampleFrames, type LightMap, type LightMapOptions } from '../../tasks/previews/fseq-lightmap.js';
import { buildEseq, buildFseqV1, buildFseqV2Frames, chunked, type FseqCompressionName } from '../support/fixture-builders.js';

const FIXTURES = '/work/shared/fixtures/fseq';

function render(file: Uint8Array, options?: LightMapOptions, chunkSize = 4096): Promise<LightMap> {
  return renderFseqLightMap(chunked(file, chunkSize), file.length, options);
}

/** The PNG's gray value at (x, y), decoded by pngjs (which expands gray to RGBA). */
function pixels(map: LightMap): (x: number, y: number) => number {
  const png = PNG.sync.read(map.png);
  expect([png.width, png.height]).toEqual([map.width, map.height]);
  return (x, y) => png.data[(y * png.width + x) * 4]!;
}

/** Frame f lights channel c at a value that differs per cell: (f * 11 + c * 5) mod 256. */
const cell = (f: number, c: number) => (f * 11 + c * 5) & 0xff;
const frames = (count: number, channels: number) =>
  Array.from({ length: count }, (_, f) => Uint8Array.from({ length: channels }, (_, c) => cell(f, c)));

describe('FSEQ light map', () => {
  it.each<FseqCompressionName>(['none', 'zlib', 'zstd'])('v2 %s: one column per frame, one row per channel, cells are the values', async (compression) => {
    const file = buildFseqV2Frames({ frames: frames(40, 12), compression, framesPerBlock: 7 });
    const map = await render(file, undefined, 13);
    expect([map.width, map.height, map.channelsPerRow]).toEqual([40, 12, 1]);
    const at = pixels(map);
    for (let f = 0; f < 40; f++) for (let c = 0; c < 12; c++) expect(at(f, c)).toBe(cell(f, c));
    expect(map.series.frames).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const mean = (f: number) => Array.from({ length: 12 }, (_, c) => cell(f, c)).reduce((a, b) => a + b, 0) / 12 / 255;
    map.series.brightness.forEach((value, f) => expect(value).toBeCloseTo(mean(f), 4));
  });

  it('a bright frame in the dark shows as a bright column and a peak in the brightness series', async () => {
    const dark = Array.from({ length: 30 }, (_, f) => new Uint8Array(8).fill(f === 17 ? 255 : 0));
    const map = await render(buildFseqV2Frames({ frames: dark, compression: 'zstd' }));
    const at = pixels(map);
    expect(at(17, 0)).toBe(255);
    expect(at(16, 7)).toBe(0);
    expect(map.series.brightness[17]).toBe(1);
    expect(map.series.brightness.filter((b) => b > 0)).toEqual([1]);
  });

  it('sparse ranges: rows are the stored channels, the ranges back to back, and the series names them', async () => {
    const sparseRanges = [
      { start: 100, count: 4 },
      { start: 5000, count: 6 },
    ];
    const map = await render(buildFseqV2Frames({ frames: frames(9, 10), compression: 'zlib', sparseRanges }));
    expect([map.width, map.height]).toEqual([9, 10]);
    expect(map.series.sparseRanges).toEqual(sparseRanges);
    expect(pixels(map)(3, 6)).toBe(cell(3, 6));
  });

  it('huge sequences are sampled: bounded columns and rows, rows average their channel groups', async () => {
    const file = buildFseqV2Frames({ frames: frames(500, 40), compression: 'zstd', framesPerBlock: 10 });
    const map = await render(file, { maxColumns: 50, maxRows: 10 });
    expect([map.width, map.height, map.channelsPerRow]).toEqual([50, 10, 4]);
    expect(map.series.frames).toEqual(sampleFrames(500, 50));
    const at = pixels(map);
    const f = map.series.frames[7]!;
    const group = [8, 9, 10, 11].map((c) => cell(f, c));
    expect(at(7, 2)).toBe(Math.round(group.reduce((a, b) => a + b, 0) / 4));
  });

  it('v1 and ESEQ (uncompressed) follow their frame and channel counts', async () => {
    const v1 = await render(buildFseqV1({ channels: 6, frames: 20 }));
    expect([v1.width, v1.height]).toEqual([20, 6]);
    // buildFseqV1 writes the ramp (f * 7 + c * 3) mod 256.
    expect(pixels(v1)(19, 5)).toBe((19 * 7 + 5 * 3) & 0xff);
    const eseq = await render(buildEseq({ channels: 9, frames: 5 }));
    expect([eseq.width, eseq.height]).toEqual([5, 9]);
  });

  it.each([
    ['v1.0_novh_nkaminski_testseq.fseq', 600, 152],
    ['v1.0_mf_nkaminski_BBK_Merry_Christmas_Baby.fseq', 4744, 20],
  ])('real fixture %s: cells are the file bytes of the sampled frames', async (name, frameCount, channels) => {
    const file = readFileSync(`${FIXTURES}/${name}`);
    const map = await render(file);
    const offset = file.readUInt16LE(4);
    expect(map.series.frameCount).toBe(frameCount);
    expect(map.width).toBe(Math.min(frameCount, 1024));
    expect(map.height).toBe(channels);
    const at = pixels(map);
    for (const x of [0, 1, Math.floor(map.width / 2), map.width - 1]) {
      const f = map.series.frames[x]!;
      for (let c = 0; c < channels; c++) expect(at(x, c)).toBe(file[offset + f * channels + c]);
    }
  });

  it('a lying block index is a PreviewInputError, never a crash', async () => {
    const good = buildFseqV2Frames({ frames: frames(24, 4), compression: 'zlib' });
    const lying = buildFseqV2Frames({ frames: frames(24, 4), compression: 'zlib', lie: { block: { index: 1, length: 5 } } });
    await expect(render(good)).resolves.toBeDefined();
    const error = await render(lying).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreviewInputError);
  });

  it('a block that decompresses to too few frames and a truncated file are PreviewInputErrors', async () => {
    const short = buildFseqV2Frames({ frames: frames(16, 4), compression: 'zstd', framesPerBlock: 8 });
    // Claim 16 channels per frame: each block now holds too few bytes for its frames.
    const lied = Buffer.from(short);
    lied.writeUInt32LE(16, 10);
    expect(await render(lied).catch((e: unknown) => e)).toBeInstanceOf(PreviewInputError);
    const truncated = buildFseqV2Frames({ frames: frames(16, 4), compression: 'none' }).subarray(0, 60);
    expect(await render(truncated).catch((e: unknown) => e)).toBeInstanceOf(PreviewInputError);
  });

  it('a damaged header is the parser ParseError', async () => {
    expect(await render(Buffer.from('not an fseq file at all')).catch((e: unknown) => e)).toBeInstanceOf(ParseError);
  });
});
