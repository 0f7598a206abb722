// make_previews: the previews of one blob (content), made once for every upload of the same bytes
// and each option set, once its metadata is known and its verdict is clean or skipped. A preview never decides a file's
// status: content that cannot be previewed, or a step that keeps failing until its last attempt,
// leaves a `failed` row saying why, and the file stays as it is. Anything else is retried.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Task } from 'graphile-worker';
import type { Config, Kind } from '../src/config/index.js';
import { isPreviewed, parsePayload, type PreviewedKind } from '../src/db/jobs.js';
import { fillMissingMetadata, previewKindsDone, savePreview, type PreviewSet } from '../src/db/previews.js';
import { findBlob } from '../src/db/processing.js';
import type { BlobRow } from '../src/db/schema.js';
import { PREVIEW_PREFIX, type ObjectStorage } from '../src/storage/types.js';
import { isParseError } from './parsers/errors.js';
import { PreviewInputError } from './previews/errors.js';
import { PEAKS_DEFAULTS, renderAudioPeaks } from './previews/audio-peaks.js';
import { LIGHT_MAP_DEFAULTS, renderFseqLightMap } from './previews/fseq-lightmap.js';
import { THUMBNAIL_DEFAULTS, renderThumbnailsAndMetadata } from './previews/image.js';
import { errorMessage, isLastAttempt, type TaskDeps } from './deps.js';

interface RenderedPreview {
  kind: string;
  contentType: string;
  bytes: Uint8Array;
}

/** What one pass over a blob's bytes made, and the blob's metadata where that pass read it too. */
interface Rendered {
  previews: RenderedPreview[];
  metadata?: Record<string, unknown>;
}

/** What one pass over a blob's bytes makes, with the options that shape it. */
interface PreviewPlan {
  kinds: readonly string[];
  /** Names the renderer and its options: changing either makes new previews beside the old. */
  options: Record<string, unknown>;
  render(storage: ObjectStorage, blob: BlobRow, config: Config): Promise<Rendered>;
}

/** A thumbnail's preview kind names its long side: thumbnail-256, served as thumbnail-256.webp. */
const thumbnailKind = (size: number) => `thumbnail-${size}`;

/** By blob kind: exactly the kinds that get the job (PREVIEWED_KINDS); the others get no previews. */
const PLANS: Record<PreviewedKind, PreviewPlan> = {
  fseq: {
    kinds: ['lightmap', 'brightness'],
    options: { renderer: 'fseq-lightmap@1', ...LIGHT_MAP_DEFAULTS },
    render: (storage, blob) =>
      withBytes(storage, blob, async (bytes) => {
        const map = await renderFseqLightMap(bytes, blob.size, LIGHT_MAP_DEFAULTS);
        return {
          previews: [
            { kind: 'lightmap', contentType: 'image/png', bytes: map.png },
            { kind: 'brightness', contentType: 'application/json', bytes: json(map.series) },
          ],
        };
      }),
  },
  audio: {
    kinds: ['peaks', 'waveform'],
    // @2: Ogg Opus and WAV decoded too; @3: AAC / ALAC through ffmpeg (a backfill retries the files
    // an older renderer could not preview).
    options: { renderer: 'audio-peaks@3', ...PEAKS_DEFAULTS },
    render: (storage, blob, config) =>
      withBytes(storage, blob, async (bytes) => {
        const durationSec = (blob.metadata as { durationSec?: unknown } | null)?.durationSec;
        const audio = { format: blob.format ?? 'unknown', durationSec: typeof durationSec === 'number' ? durationSec : null };
        const peaks = await renderAudioPeaks(bytes, audio, PEAKS_DEFAULTS, { ffmpeg: config.ffmpegPath ? { path: config.ffmpegPath } : null });
        return {
          previews: [
            { kind: 'peaks', contentType: 'application/json', bytes: json(peaks.waveform) },
            { kind: 'waveform', contentType: 'image/png', bytes: peaks.png },
          ],
        };
      }),
  },
  image: {
    kinds: THUMBNAIL_DEFAULTS.sizes.map(thumbnailKind),
    options: { renderer: 'image-thumbnails@1', ...THUMBNAIL_DEFAULTS },
    // The header is read with the thumbnails: an image stored before image metadata existed gets it here.
    render: (storage, blob) =>
      withBytes(storage, blob, async (bytes) => {
        const { metadata, thumbnails } = await renderThumbnailsAndMetadata(bytes, THUMBNAIL_DEFAULTS);
        return {
          metadata: { ...metadata },
          previews: thumbnails.map((thumbnail) => ({ kind: thumbnailKind(thumbnail.size), contentType: 'image/webp', bytes: thumbnail.webp })),
        };
      }),
  },
};

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** Streams the blob's bytes into `use`, and closes the stream whether or not `use` read it all. */
async function withBytes<T>(storage: ObjectStorage, blob: BlobRow, use: (bytes: Readable) => Promise<T>): Promise<T> {
  const bytes = await storage.read(blob.storageKey, undefined, blob.size);
  try {
    return await use(bytes);
  } finally {
    bytes.destroy();
  }
}

/** Beside the blobs, under the prefix the orphan sweep lists; the key never names other bytes. */
function previewKey(sha256: string, kind: string, hash: string): string {
  return `${PREVIEW_PREFIX}${sha256}-${kind}-${hash}`;
}

function optionsHash(options: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(options)).digest('hex').slice(0, 16);
}

/** The preview sets this code makes now, per blob kind: what a backfill looks for (src/db/previews.ts). */
export const PREVIEW_SETS: PreviewSet[] = Object.entries(PLANS).map(([blobKind, plan]) => ({
  blobKind,
  optionsHash: optionsHash(plan.options),
  kinds: plan.kinds,
}));

export function makePreviews(deps: TaskDeps): Task<'make_previews'> {
  return async (rawPayload, helpers) => {
    const { sha256 } = parsePayload('make_previews', rawPayload);
    const blob = await findBlob(deps.db, sha256);
    // Infected, pending or unscannable content gets none; content its kind rejects has none to make.
    // Metadata still pending: its step enqueues this job again when done.
    if (!blob || !(blob.scanStatus === 'clean' || blob.scanStatus === 'skipped') || !blob.metadataDone || blob.validationError !== null) return;
    const plan = isPreviewed(blob.kind) ? PLANS[blob.kind] : null;
    if (!plan) return;
    const hash = optionsHash(plan.options);
    const done = await previewKindsDone(deps.db, sha256, hash);
    if (plan.kinds.every((kind) => done.has(kind))) return;

    const log = deps.logger.child({ task: helpers.job.task_identifier, sha256, attempt: helpers.job.attempts });
    const giveUp = async (reason: string) => {
      for (const kind of plan.kinds) {
        if (!done.has(kind)) await savePreview(deps.db, { sha256, kind, optionsHash: hash, status: 'failed', error: reason });
      }
    };
    let rendered: Rendered;
    try {
      rendered = await plan.render(deps.storage, blob, deps.config);
    } catch (error) {
      if (isParseError(error) || error instanceof PreviewInputError) {
        await giveUp(error.message);
        log.info({ reason: error.message }, 'content cannot be previewed');
        return;
      }
      if (isLastAttempt(helpers.job)) {
        await giveUp(errorMessage(error));
        log.error({ err: error }, 'previews gave up after the last attempt; the file is unaffected');
        return;
      }
      throw error;
    }
    for (const preview of rendered.previews) {
      if (done.has(preview.kind)) continue;
      const storageKey = previewKey(sha256, preview.kind, hash);
      // Bytes first, then the record: a crash between leaves an object the orphan sweep removes.
      await deps.storage.write(storageKey, preview.bytes, preview.contentType);
      await savePreview(deps.db, {
        sha256,
        kind: preview.kind,
        optionsHash: hash,
        status: 'ready',
        storageKey,
        contentType: preview.contentType,
        size: preview.bytes.length,
      });
    }
    if (rendered.metadata && blob.metadata === null && (await fillMissingMetadata(deps.db, sha256, rendered.metadata))) {
      log.info('metadata the blob lacked was filled in from its previews');
    }
    log.info({ kinds: rendered.previews.map((p) => p.kind) }, 'previews made');
  };
}
