/**
 * Images through sharp (libvips): the facts of an image (width, height and format, as displayed,
 * i.e. after its EXIF orientation) and WebP thumbnails on the long side, oriented, metadata
 * stripped, never upscaled. Pure: the file's bytes as a stream in, data out.
 *
 * libvips needs the whole compressed input at hand (sharp collects a streamed one too), so the
 * compressed bytes are bounded by `maxInputBytes` (and by the kind's size limit upstream);
 * the decoded pixels are bounded by `maxInputPixels`, so a decompression bomb fails the preview,
 * not the worker.
 */
import sharp, { type Metadata, type Sharp } from 'sharp';
import { PreviewInputError } from './errors.js';

// Each image is read once: libvips' operation cache would only keep decoded pixels in the worker.
sharp.cache(false);

/** The file's bytes: a stream, or chunks at hand. */
export type ImageBytes = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface ImageLimits {
  /** Compressed bytes a preview reads at most. */
  maxInputBytes: number;
  /** Width × height of the largest image decoded (sharp's limitInputPixels). */
  maxInputPixels: number;
}

export interface ThumbnailOptions extends ImageLimits {
  /** Long-side sizes, one thumbnail each. */
  sizes: readonly number[];
  /** WebP quality, 1–100. */
  quality: number;
}

export const IMAGE_LIMITS: ImageLimits = { maxInputBytes: 64 * 2 ** 20, maxInputPixels: 100_000_000 };

export const THUMBNAIL_DEFAULTS: ThumbnailOptions = { ...IMAGE_LIMITS, sizes: [256, 1024], quality: 80 };

/** What the record's `metadata` holds for kind `image`. */
export interface ImageMetadata {
  /** As displayed: after the EXIF orientation (a portrait photo stored sideways is portrait here). */
  width: number;
  height: number;
  /** libvips' name of the format: jpeg, png, webp, gif, tiff, heif, ... */
  format: string;
  /** The EXIF orientation (1–8) when the file has one. */
  orientation?: number;
  hasAlpha: boolean;
  /** Frames of an animated image. */
  pages?: number;
}

export interface Thumbnail {
  /** The long side it was asked for (the image's own when smaller: never upscaled). */
  size: number;
  width: number;
  height: number;
  webp: Buffer;
}

/**
 * The compressed bytes of `source`, at most `limits.maxInputBytes` of them. sharp would collect a
 * streamed input the same way; collecting it here keeps a storage failure (worth a retry) apart
 * from what libvips says about the bytes (a PreviewInputError).
 */
async function collect(source: ImageBytes, limits: ImageLimits): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of source) {
    length += chunk.length;
    if (length > limits.maxInputBytes) {
      throw new PreviewInputError('IMAGE_TOO_LARGE', `the image is larger than ${limits.maxInputBytes} bytes, the most a preview reads`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}

async function decoding<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw undecodable(error);
  }
}

const open = (input: Buffer, limits: ImageLimits): Sharp => sharp(input, { limitInputPixels: limits.maxInputPixels, sequentialRead: true });

function undecodable(error: unknown): PreviewInputError {
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) {
    return new PreviewInputError('IMAGE_TOO_MANY_PIXELS', `the image has more pixels than a preview decodes: ${message}`, { cause: error });
  }
  return new PreviewInputError('IMAGE_UNDECODABLE', `the image cannot be decoded: ${message}`, { cause: error });
}

function describe(metadata: Metadata): ImageMetadata {
  const shown = metadata.autoOrient ?? { width: metadata.width, height: metadata.height };
  return {
    width: shown.width,
    height: shown.height,
    format: metadata.format,
    ...(metadata.orientation ? { orientation: metadata.orientation } : {}),
    hasAlpha: metadata.hasAlpha,
    ...(metadata.pages && metadata.pages > 1 ? { pages: metadata.pages } : {}),
  };
}

/** The image's facts from its header; a PreviewInputError when libvips cannot read one. */
export async function readImageMetadata(source: ImageBytes, limits: ImageLimits = IMAGE_LIMITS): Promise<ImageMetadata> {
  const input = await collect(source, limits);
  return decoding(async () => describe(await open(input, limits).metadata()));
}

/** One WebP per size in `options.sizes`, from one read of the image. */
export async function renderThumbnails(source: ImageBytes, options: ThumbnailOptions = THUMBNAIL_DEFAULTS): Promise<Thumbnail[]> {
  return thumbnailsOf(await collect(source, options), options);
}

/** The thumbnails and the image's facts from one read (make_previews fills in facts an older image lacks). */
export async function renderThumbnailsAndMetadata(
  source: ImageBytes,
  options: ThumbnailOptions = THUMBNAIL_DEFAULTS,
): Promise<{ metadata: ImageMetadata; thumbnails: Thumbnail[] }> {
  const input = await collect(source, options);
  const metadata = await decoding(async () => describe(await open(input, options).metadata()));
  return { metadata, thumbnails: await thumbnailsOf(input, options) };
}

async function thumbnailsOf(input: Buffer, options: ThumbnailOptions): Promise<Thumbnail[]> {
  return decoding(async () => {
    const thumbnails: Thumbnail[] = [];
    for (const size of options.sizes) {
      // Sizes one at a time: each decodes again (shrink-on-load keeps that cheap), but only one
      // decoded image is held at once.
      const { data, info } = await open(input, options)
        .autoOrient()
        .resize({ width: size, height: size, fit: 'inside', withoutEnlargement: true })
        .webp({ quality: options.quality })
        .toBuffer({ resolveWithObject: true });
      thumbnails.push({ size, width: info.width, height: info.height, webp: data });
    }
    return thumbnails;
  });
}
