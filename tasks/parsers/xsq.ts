/**
 * Streaming metadata extraction for xLights sequence files (.xsq).
 *
 * Why saxes and not fast-xml-parser: fast-xml-parser builds the whole document from one string,
 * so a 100 MB sequence (big shows have millions of <Effect> elements) needs the text plus a full
 * object tree, around 1 GB of heap. saxes is a push parser: we feed it chunks as they arrive and
 * keep only a path stack and a few counters, so memory stays flat whatever the file size.
 *
 * Security posture (the file comes from an untrusted uploader):
 * - any DOCTYPE is refused (xLights never writes one), which rules out billion-laughs style entity
 *   expansion and external entities (XXE); saxes does not expand DTD entities anyway;
 * - total input is capped (`maxBytes`), and so is any single text/attribute/comment/name run
 *   (`maxTextBytes`), checked while saxes is still accumulating it, not after;
 * - element nesting depth and attributes per element are capped, since saxes keeps both in memory.
 */

import { SaxesParser, type SaxesAttributePlain, type SaxesTagPlain } from 'saxes';
import { ParseError, describeError } from './errors.js';

export interface XsqMetadata {
  xlightsVersion: string | null;
  sequenceType: string | null;
  sequenceTimingMs: number | null;
  durationMs: number | null;
  /** Basename of head/mediaFile (which holds a Windows or POSIX absolute path). */
  mediaFile: string | null;
  song: string | null;
  artist: string | null;
  album: string | null;
  author: string | null;
  /** ElementEffects/Element[@type=model]. */
  modelCount: number;
  /** ElementEffects/Element[@type=timing]. */
  timingTrackCount: number;
  /** Effect instances placed on models (EffectLayer, Strand, Strand/Node, SubModelEffectLayer). */
  effectCount: number;
  /** <Effect> elements inside timing tracks: timing marks/labels, not effects. */
  timingMarkCount: number;
  /** EffectDB/Effect: shared settings strings referenced by effects, not instances. */
  effectDbCount: number;
  paletteCount: number;
  /** Root attribute FixedPointTiming: times are integer milliseconds rather than seconds. */
  fixedPointTiming: boolean;
}

export interface ParseXsqOptions {
  /** Total input size limit in bytes. Default 100 MiB. */
  maxBytes?: number;
  /**
   * Limit for any single text, attribute value, comment, CDATA or name run. Default 1 MiB.
   * Measured in UTF-16 code units, which is never more than the UTF-8 byte count.
   */
  maxTextBytes?: number;
  /** Element nesting limit. xLights files nest about 6 deep. Default 256. */
  maxDepth?: number;
  /** Attributes per element limit. Default 10 000. */
  maxAttributes?: number;
}

const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;
const DEFAULT_MAX_TEXT = 1024 * 1024;
const DEFAULT_MAX_DEPTH = 256;
const DEFAULT_MAX_ATTRIBUTES = 10_000;
/** Decoded text is fed to saxes in slices this long so its buffers can be checked in between. */
const FEED_SLICE = 64 * 1024;
const MAX_DECODE_ROUNDS = 5;

type HeadField = 'version' | 'author' | 'song' | 'artist' | 'album' | 'sequenceTiming' | 'sequenceType' | 'mediaFile' | 'sequenceDuration';
const HEAD_FIELDS: ReadonlySet<string> = new Set<HeadField>([
  'version',
  'author',
  'song',
  'artist',
  'album',
  'sequenceTiming',
  'sequenceType',
  'mediaFile',
  'sequenceDuration',
]);

/** Containers an effect instance can sit in, relative to its ElementEffects/Element. */
const EFFECT_PLACEMENTS: ReadonlySet<string> = new Set(['EffectLayer', 'Strand', 'Strand/Node', 'SubModelEffectLayer']);

/**
 * saxes accumulates text, names and attribute lists in private fields until a token ends. We
 * peek at them (saxes 6 layout) to stop a hostile multi-megabyte token before it is complete;
 * every field is type-checked, so a different layout just disables this early check while the
 * per-event checks still apply.
 */
interface SaxesBuffers {
  text?: unknown;
  name?: unknown;
  entity?: unknown;
  piTarget?: unknown;
  attribList?: unknown;
}

const ENTITY_RE = /&(amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});/g;
const NAMED: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * Real sequences contain head text escaped more than once (`&amp;amp;` in the file is `&amp;`
 * after XML decoding). Decode the five standard entities and numeric references until the text
 * stops changing, at most MAX_DECODE_ROUNDS times so a crafted string cannot loop us.
 */
export function decodeRepeatedEntities(text: string): string {
  let current = text;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    if (!current.includes('&')) break;
    const next = current.replace(ENTITY_RE, (whole, ref: string) => {
      const named = NAMED[ref];
      if (named !== undefined) return named;
      const cp = ref.startsWith('#x') ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      // Leave references to NUL, surrogates or beyond Unicode untouched rather than invent text.
      if (!Number.isFinite(cp) || cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return whole;
      return String.fromCodePoint(cp);
    });
    if (next === current) break;
    current = next;
  }
  return current;
}

function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = (parts[i] ?? '').trim();
    if (part !== '') return part;
  }
  return '';
}

function clean(value: string | undefined): string | null {
  if (value === undefined) return null;
  const trimmed = decodeRepeatedEntities(value).trim();
  return trimmed === '' ? null : trimmed;
}

/** "50 ms" (or a bare "50") → 50. */
function parseTiming(value: string | null): number | null {
  if (value === null) return null;
  const m = /^(\d+(?:\.\d+)?)\s*(?:ms)?$/i.exec(value);
  if (m === null) return null;
  const ms = Number(m[1]);
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}

/** sequenceDuration is seconds ("221.306") → rounded milliseconds. */
function parseDuration(value: string | null): number | null {
  if (value === null) return null;
  if (!/^\d+(?:\.\d+)?$/.test(value)) return null;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? Math.round(seconds * 1000) : null;
}

function truthyAttribute(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.trim().toLowerCase();
  return v !== '' && v !== '0' && v !== 'false';
}

export async function parseXsq(source: AsyncIterable<Uint8Array | string>, opts: ParseXsqOptions = {}): Promise<XsqMetadata> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxText = opts.maxTextBytes ?? DEFAULT_MAX_TEXT;
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const maxAttributes = opts.maxAttributes ?? DEFAULT_MAX_ATTRIBUTES;

  const parser = new SaxesParser({ xmlns: false, position: true } as const);
  const buffers = parser as unknown as SaxesBuffers;

  // Path of open element names; its length is the depth.
  const stack: string[] = [];
  let sawRoot = false;
  let fixedPointTiming = false;
  let elementType: string | null = null; // type of the open ElementEffects/Element
  let headField: HeadField | null = null;
  let headText = '';
  let attributesInTag = 0;
  const head = new Map<HeadField, string>();
  const counts = { modelCount: 0, timingTrackCount: 0, effectCount: 0, timingMarkCount: 0, effectDbCount: 0, paletteCount: 0 };

  const tooLong = (what: string, length: number): ParseError =>
    new ParseError('XML_TOO_LARGE', `${what} at line ${parser.line} is longer than the ${maxText}-byte limit (${length}+ characters)`, {
      details: { limit: maxText, line: parser.line },
    });

  parser.on('doctype', () => {
    throw new ParseError('XML_DOCTYPE_FORBIDDEN', `XML DOCTYPE declarations are not allowed (line ${parser.line}); xLights never writes one`, {
      details: { line: parser.line },
    });
  });

  parser.on('error', (err: Error) => {
    const bare = err.message.replace(/^\d+:\d+: /, '');
    throw new ParseError('XML_MALFORMED', `malformed XML at line ${parser.line}, column ${parser.column + 1}: ${bare}`, {
      details: { line: parser.line, column: parser.column + 1 },
    });
  });

  parser.on('opentagstart', (tag) => {
    attributesInTag = 0;
    if (!sawRoot) {
      sawRoot = true;
      if (tag.name !== 'xsequence') {
        throw new ParseError('XSQ_NOT_XLIGHTS', `not an xLights sequence: the root element is <${tag.name}>, expected <xsequence>`, {
          details: { root: tag.name },
        });
      }
    }
    if (stack.length >= maxDepth) {
      throw new ParseError('XML_TOO_DEEP', `XML nesting exceeds ${maxDepth} levels at line ${parser.line}`, { details: { limit: maxDepth } });
    }
  });

  parser.on('attribute', (attr: SaxesAttributePlain) => {
    attributesInTag++;
    if (attributesInTag > maxAttributes) {
      throw new ParseError('XML_TOO_LARGE', `an element at line ${parser.line} has more than ${maxAttributes} attributes`, {
        details: { limit: maxAttributes },
      });
    }
    if (attr.value.length > maxText) throw tooLong(`attribute "${attr.name.slice(0, 64)}"`, attr.value.length);
  });

  parser.on('opentag', (tag: SaxesTagPlain) => {
    const depth = stack.length;
    const name = tag.name;
    if (depth === 0) {
      fixedPointTiming = truthyAttribute(tag.attributes['FixedPointTiming']);
    } else if (depth === 2) {
      const parent = stack[1];
      if (parent === 'head' && HEAD_FIELDS.has(name) && !head.has(name as HeadField)) {
        headField = name as HeadField;
        headText = '';
      } else if (parent === 'ElementEffects' && name === 'Element') {
        elementType = tag.attributes['type'] ?? null;
        if (elementType === 'model') counts.modelCount++;
        else if (elementType === 'timing') counts.timingTrackCount++;
      } else if (parent === 'EffectDB' && name === 'Effect') {
        counts.effectDbCount++;
      } else if (parent === 'ColorPalettes' && name === 'ColorPalette') {
        counts.paletteCount++;
      }
    } else if (name === 'Effect' && depth >= 4 && stack[1] === 'ElementEffects' && stack[2] === 'Element') {
      // Placement relative to the Element: EffectLayer, Strand, Strand/Node, SubModelEffectLayer.
      if (EFFECT_PLACEMENTS.has(stack.slice(3).join('/'))) {
        if (elementType === 'model') counts.effectCount++;
        else if (elementType === 'timing') counts.timingMarkCount++;
      }
    }
    stack.push(name);
  });

  parser.on('closetag', (tag: SaxesTagPlain) => {
    stack.pop();
    if (headField !== null && stack.length === 2 && tag.name === headField) {
      head.set(headField, headText);
      headField = null;
      headText = '';
    } else if (stack.length === 2 && tag.name === 'Element') {
      elementType = null;
    }
  });

  const onText = (text: string): void => {
    if (text.length > maxText) throw tooLong('a text run', text.length);
    // Only direct text of a head field (depth 3: xsequence/head/field).
    if (headField !== null && stack.length === 3) {
      headText += text;
      if (headText.length > maxText) throw tooLong(`<${headField}>`, headText.length);
    }
  };
  parser.on('text', onText);
  parser.on('cdata', onText);

  const checkBuffers = (): void => {
    for (const key of ['text', 'name', 'entity', 'piTarget'] as const) {
      const value = buffers[key];
      if (typeof value === 'string' && value.length > maxText) throw tooLong('a text, attribute, comment or name run', value.length);
    }
    const list = buffers.attribList;
    if (Array.isArray(list) && list.length > maxAttributes) {
      throw new ParseError('XML_TOO_LARGE', `an element at line ${parser.line} has more than ${maxAttributes} attributes`, {
        details: { limit: maxAttributes },
      });
    }
  };

  const feed = (text: string): void => {
    let start = 0;
    while (start < text.length) {
      let end = Math.min(start + FEED_SLICE, text.length);
      // Do not split a surrogate pair between two writes.
      const last = text.charCodeAt(end - 1);
      if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++;
      write(text.slice(start, end));
      checkBuffers();
      start = end;
    }
  };

  const write = (text: string): void => {
    try {
      parser.write(text);
    } catch (err) {
      throw asParseError(err);
    }
  };

  const decoder = new TextDecoder('utf-8', { fatal: true });
  let bytes = 0;
  const decode = (chunk: Uint8Array, stream: boolean): string => {
    try {
      return decoder.decode(chunk, { stream });
    } catch {
      throw new ParseError('XML_MALFORMED', `the file is not valid UTF-8 (around byte ${bytes}); xLights writes UTF-8 XML`, {
        details: { byte: bytes },
      });
    }
  };

  for await (const chunk of source) {
    if (typeof chunk === 'string') {
      bytes += Buffer.byteLength(chunk, 'utf8');
      if (bytes > maxBytes) throw tooLarge(maxBytes);
      // A string chunk after bytes: flush any partial UTF-8 sequence first.
      feed(decode(new Uint8Array(0), false) + chunk);
    } else {
      bytes += chunk.byteLength;
      if (bytes > maxBytes) throw tooLarge(maxBytes);
      feed(decode(chunk, true));
    }
  }
  feed(decode(new Uint8Array(0), false));

  if (!sawRoot) {
    throw new ParseError('XML_EMPTY', bytes === 0 ? 'the file is empty' : 'the XML document has no root element', { details: { bytes } });
  }
  try {
    parser.close();
  } catch (err) {
    throw asParseError(err);
  }

  const mediaPath = clean(head.get('mediaFile'));
  const media = mediaPath === null ? '' : basename(mediaPath);
  return {
    xlightsVersion: clean(head.get('version')),
    sequenceType: clean(head.get('sequenceType')),
    sequenceTimingMs: parseTiming(clean(head.get('sequenceTiming'))),
    durationMs: parseDuration(clean(head.get('sequenceDuration'))),
    mediaFile: media === '' ? null : media,
    song: clean(head.get('song')),
    artist: clean(head.get('artist')),
    album: clean(head.get('album')),
    author: clean(head.get('author')),
    ...counts,
    fixedPointTiming,
  };
}

function tooLarge(maxBytes: number): ParseError {
  return new ParseError('XML_TOO_LARGE', `the XML file is larger than the ${maxBytes}-byte limit`, { details: { limit: maxBytes } });
}

function asParseError(err: unknown): ParseError {
  if (err instanceof ParseError) return err;
  // saxes reports problems through the error handler above; anything else escaping from it is
  // still about this input, never about our infrastructure.
  return new ParseError('XML_MALFORMED', `malformed XML: ${describeError(err)}`, { cause: err });
}
