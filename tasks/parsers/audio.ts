/**
 * Audio metadata via music-metadata, reading from a stream.
 *
 * Memory: music-metadata pulls from the stream through a small tokenizer and skips what it does
 * not need, so even when it has to read to the end (an MP3 without a Xing/VBRI header needs a
 * full frame scan for an exact duration, which `duration: true` asks for) it streams instead of
 * buffering the file. Cover art is skipped: it can be megabytes and we do not store it.
 *
 * Errors: anything music-metadata rejects, or a result without audio, becomes ParseError
 * AUDIO_UNPARSEABLE. An error raised by the *source stream itself* (disk, network) is not about
 * the file's content and is rethrown unchanged so the job can be retried.
 *
 * The source is consumed through a wrapper stream that is destroyed before returning; since
 * music-metadata may stop before the end, that also stops (and, for a Readable, destroys) the
 * source. Do not share one source stream with another consumer.
 */

import { Readable } from 'node:stream';
import { parseStream, type IAudioMetadata } from 'music-metadata';
import { ParseError, describeError } from './errors.js';

export interface AudioMetadata {
  /** e.g. "MPEG", "FLAC", "Ogg", "WAVE", "M4A/isom/mp42". */
  container: string | null;
  /** e.g. "MPEG 1 Layer 3", "FLAC", "Opus", "PCM", "MPEG-4/AAC". */
  codec: string | null;
  durationSec: number | null;
  sampleRate: number | null;
  channels: number | null;
  /** Bits per second, rounded. */
  bitrate: number | null;
  lossless: boolean | null;
  bitsPerSample: number | null;
  title: string | null;
  artist: string | null;
  album: string | null;
  /** e.g. "CBR", "V1". */
  codecProfile: string | null;
  numberOfSamples: number | null;
  /** music-metadata's quality warnings, de-duplicated and capped (some files repeat one thousands of times). */
  warnings: string[];
}

export interface AudioInfo {
  /** Total size in bytes; lets music-metadata estimate durations and find trailing tags. */
  size?: number;
  /**
   * Declared MIME type. Used only in error messages, deliberately NOT passed to music-metadata:
   * when its content detection fails it falls back to the declared type, and its MPEG parser will
   * then "find" a frame or two in random bytes (garbage declared audio/mpeg came back as
   * "MPEG 2 Layer 2, 0.05 s"). Every format we accept is recognised from its content anyway.
   */
  mimeType?: string;
}

const MAX_WARNINGS = 20;
const MAX_WARNING_LENGTH = 200;

function finite(value: number | undefined | null): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function text(value: string | undefined | null): string | null {
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
}

/** Make a warning printable and short: some carry raw NUL bytes from broken tags. */
function printable(message: string): string {
  const escaped = message.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return escaped.length > MAX_WARNING_LENGTH ? `${escaped.slice(0, MAX_WARNING_LENGTH)}…` : escaped;
}

function summarizeWarnings(messages: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const m of messages) {
    const key = printable(m);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const out: string[] = [];
  for (const [message, count] of counts) {
    if (out.length === MAX_WARNINGS) {
      out.push(`…and ${counts.size - MAX_WARNINGS} more distinct warnings`);
      break;
    }
    out.push(count > 1 ? `${message} (×${count})` : message);
  }
  return out;
}

export async function parseAudio(source: Readable | AsyncIterable<Uint8Array>, info: AudioInfo = {}): Promise<AudioMetadata> {
  // Always re-wrap the source in a fresh byte-mode Readable:
  // - the tokenizer calls read(n) and needs at most n bytes back; an object-mode stream (such as
  //   Readable.from([buffer])) hands over whole chunks and overflows its buffer;
  // - music-metadata falls back to the *file extension* of an fs stream's `path` when content
  //   detection fails, which would bring back the lenient guessing described at `mimeType`.
  const stream = Readable.from(source, { objectMode: false });

  let streamError: unknown;
  const onError = (err: unknown): void => {
    streamError ??= err;
  };
  stream.on('error', onError);

  let metadata: IAudioMetadata;
  try {
    const fileInfo: { size?: number } = {};
    if (info.size !== undefined) fileInfo.size = info.size;
    metadata = await parseStream(stream, fileInfo, { duration: true, skipCovers: true });
  } catch (err) {
    if (streamError !== undefined) throw streamError;
    const declared = info.mimeType === undefined ? '' : ` (declared ${info.mimeType})`;
    throw new ParseError('AUDIO_UNPARSEABLE', `audio could not be parsed${declared}: ${describeError(err)}`, {
      cause: err,
      details: { declaredMimeType: info.mimeType ?? null },
    });
  } finally {
    stream.off('error', onError);
    // Keep a late error from our wrapper from becoming an uncaught exception, then close it
    // (which also ends the iteration of the source).
    stream.on('error', () => undefined);
    stream.destroy();
  }
  if (streamError !== undefined) throw streamError;

  const f = metadata.format;
  if (f.hasAudio === false) {
    throw new ParseError('AUDIO_UNPARSEABLE', `the ${f.container ?? 'media'} file contains no audio track`, {
      details: { container: f.container ?? null },
    });
  }
  const sampleRate = finite(f.sampleRate);
  const durationSec = finite(f.duration);
  // A recognised container alone (e.g. a WAVE header cut before its fmt chunk) is not audio we
  // can describe; every playable stream yields at least a codec, a sample rate or a duration.
  if (f.codec === undefined && sampleRate === null && durationSec === null) {
    throw new ParseError(
      'AUDIO_UNPARSEABLE',
      f.container === undefined
        ? 'no audio format information could be found in the file'
        : `the ${f.container} container holds no readable audio stream information (codec, sample rate or duration)`,
      { details: { container: f.container ?? null } },
    );
  }
  const bitrate = finite(f.bitrate);
  return {
    container: text(f.container),
    codec: text(f.codec),
    durationSec,
    sampleRate,
    channels: finite(f.numberOfChannels),
    bitrate: bitrate === null ? null : Math.round(bitrate),
    lossless: typeof f.lossless === 'boolean' ? f.lossless : null,
    bitsPerSample: finite(f.bitsPerSample),
    title: text(metadata.common.title),
    artist: text(metadata.common.artist),
    album: text(metadata.common.album),
    codecProfile: text(f.codecProfile),
    numberOfSamples: finite(f.numberOfSamples),
    warnings: summarizeWarnings(metadata.quality.warnings.map((w) => w.message)),
  };
}
