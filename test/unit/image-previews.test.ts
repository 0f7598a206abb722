// Image thumbnails and metadata through sharp, on images generated here: sizes on the long side
// (never upscaled), EXIF orientation applied (a sideways-stored JPEG comes out upright), metadata
// stripped, and damaged input (truncated, garbage, a decompression bomb) failing with a reason.
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { PreviewInputError } from '../../tasks/previews/errors.js';
import { readImageMetadata, renderThumbnails, renderThumbnailsAndMetadata } from '../../tasks/previews/image.js';
import { chunked } from '../support/fixture-builders.js';

/** A `width`×`height` picture: red left half, blue right half. */
async function halves(width: number, height: number) {
  const half = Math.floor(width / 2);
  return sharp({ create: { width, height, channels: 3, background: '#ff0000' } }).composite([
    { input: { create: { width: width - half, height, channels: 3, background: '#0000ff' } }, left: half, top: 0 },
  ]);
}

/** The RGB of one pixel of an encoded image. */
async function pixel(image: Buffer, x: number, y: number): Promise<[number, number, number]> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [data[at]!, data[at + 1]!, data[at + 2]!];
}

const reddish = ([r, , b]: [number, number, number]) => r > 200 && b < 60;
const bluish = ([r, , b]: [number, number, number]) => b > 200 && r < 60;

async function inputError(promise: Promise<unknown>): Promise<PreviewInputError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PreviewInputError);
  return error as PreviewInputError;
}

describe('image thumbnails', () => {
  it('a PNG: WebP thumbnails of 256 and 1024 px on the long side, aspect kept', async () => {
    const png = await (await halves(2000, 1000)).png().toBuffer();
    const thumbnails = await renderThumbnails(chunked(png, 4096));
    expect(thumbnails.map((t) => [t.size, t.width, t.height])).toEqual([
      [256, 256, 128],
      [1024, 1024, 512],
    ]);
    for (const thumbnail of thumbnails) expect((await sharp(thumbnail.webp).metadata()).format).toBe('webp');
    expect(reddish(await pixel(thumbnails[0]!.webp, 10, 64))).toBe(true);
    expect(bluish(await pixel(thumbnails[0]!.webp, 245, 64))).toBe(true);
  });

  it('a small image is never upscaled', async () => {
    const png = await (await halves(100, 40)).png().toBuffer();
    const thumbnails = await renderThumbnails([png]);
    expect(thumbnails.map((t) => [t.width, t.height])).toEqual([
      [100, 40],
      [100, 40],
    ]);
  });

  it('a JPEG stored sideways with EXIF orientation 6: upright thumbnails and metadata, no EXIF left', async () => {
    // Stored 600×200, red on the left; orientation 6 means "rotate 90° clockwise to display":
    // shown 200×600 with red on top.
    const jpeg = await (await halves(600, 200)).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);

    expect(await readImageMetadata(chunked(jpeg, 1000))).toEqual({ width: 200, height: 600, format: 'jpeg', orientation: 6, hasAlpha: false });

    const [small, large] = await renderThumbnails(chunked(jpeg, 1000));
    expect([small!.width, small!.height]).toEqual([85, 256]);
    expect([large!.width, large!.height]).toEqual([200, 600]); // 1024 would upscale
    expect(reddish(await pixel(small!.webp, 42, 20))).toBe(true);
    expect(bluish(await pixel(small!.webp, 42, 235))).toBe(true);
    const stripped = await sharp(small!.webp).metadata();
    expect(stripped.orientation).toBeUndefined();
    expect(stripped.exif).toBeUndefined();
    expect(stripped.icc).toBeUndefined();

    // One read for both (make_previews fills in an older image's metadata): the same as each alone.
    const both = await renderThumbnailsAndMetadata(chunked(jpeg, 1000));
    expect(both.metadata).toEqual({ width: 200, height: 600, format: 'jpeg', orientation: 6, hasAlpha: false });
    expect(both.thumbnails.map((t) => [t.size, t.width, t.height])).toEqual([
      [256, 85, 256],
      [1024, 200, 600],
    ]);
  });

  it('metadata of a PNG with alpha', async () => {
    const png = await sharp({ create: { width: 30, height: 20, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } })
      .png()
      .toBuffer();
    expect(await readImageMetadata([png])).toEqual({ width: 30, height: 20, format: 'png', hasAlpha: true });
  });

  it('a truncated JPEG: its header still reads, its thumbnails fail with a reason', async () => {
    const jpeg = await (await halves(800, 600)).jpeg().toBuffer();
    const truncated = jpeg.subarray(0, Math.floor(jpeg.length / 2));
    expect(await readImageMetadata([truncated])).toMatchObject({ width: 800, height: 600, format: 'jpeg' });
    const error = await inputError(renderThumbnails([truncated]));
    expect(error.code).toBe('IMAGE_UNDECODABLE');
    expect(error.message).toMatch(/^the image cannot be decoded: .*premature end/i);
  });

  it('garbage after a JPEG signature: no metadata, no thumbnails, a reason', async () => {
    const garbage = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(2000, 0x41)]);
    expect((await inputError(readImageMetadata([garbage]))).code).toBe('IMAGE_UNDECODABLE');
    expect((await inputError(renderThumbnails([garbage]))).code).toBe('IMAGE_UNDECODABLE');
  });

  it('a decompression bomb (a 30,000 × 30,000 PNG header) fails the preview before decoding', async () => {
    const png = Buffer.from(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer());
    // IHDR's width and height, then its CRC (over type and data).
    png.writeUInt32BE(30_000, 16);
    png.writeUInt32BE(30_000, 20);
    png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
    const before = process.memoryUsage().rss;
    const error = await inputError(renderThumbnails([png]));
    expect(error.code).toBe('IMAGE_TOO_MANY_PIXELS');
    expect(error.message).toMatch(/pixel limit/);
    // 900 million pixels were never allocated.
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 2 ** 20);
  });

  it('more bytes than a preview reads: refused while reading, with a reason', async () => {
    const png = await (await halves(64, 64)).png().toBuffer();
    expect(png.length).toBeGreaterThan(100);
    const error = await inputError(renderThumbnails(chunked(png, 10), { sizes: [256], quality: 80, maxInputBytes: 100, maxInputPixels: 1e6 }));
    expect(error.code).toBe('IMAGE_TOO_LARGE');
  });
});
