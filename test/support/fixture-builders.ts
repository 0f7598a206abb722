/**
 * Generators for synthetic test files: FSEQ v1/v2/ESEQ, xLights XSQ, an XML bomb and a PNG.
 *
 * Shared by unit tests (parsers) and integration tests (uploads through the whole pipeline), so
 * every builder returns a complete, self-consistent file unless a `lie` is asked for. buildFseqV2's
 * compressed block payloads are arbitrary bytes of the declared lengths (the header parser never
 * decompresses); buildFseqV2Frames writes real zlib/zstd blocks of given frames (light maps).
 * Nothing here produces malware test strings; tests that need EICAR assemble it themselves.
 */

import { execFileSync } from 'node:child_process';
import { deflateSync } from 'node:zlib';
import type { XsqMetadata } from '../../tasks/parsers/xsq.js';

// ---------------------------------------------------------------------------------------------
// FSEQ

export type FseqCompressionName = 'none' | 'zstd' | 'zlib';

export interface FseqVariableHeaderInput {
  /** Two ASCII characters, e.g. "mf", "sp". */
  code: string;
  /** A string is written UTF-8 and NUL-terminated, as FPP/xLights do; bytes are written as-is. */
  value: string | Uint8Array;
}

export interface FseqExtendedDataInput {
  /** Code of the data the `ED` pointer refers to, e.g. "XS". */
  code: string;
  payload: Uint8Array;
}

/** Deliberate inconsistencies, applied after a valid file has been laid out. */
export interface FseqLie {
  magic?: string;
  majorVersion?: number;
  minorVersion?: number;
  channelCount?: number;
  frameCount?: number;
  stepMs?: number;
  headerLength?: number;
  channelDataOffset?: number;
  /** Raw low nibble of byte 20. */
  compressionType?: number;
  /** Raw byte 22. */
  sparseRangeCount?: number;
  /** Overwrite one block-index slot. */
  block?: { index: number; firstFrame?: number; length?: number };
  /** Overwrite the u16 length field of the n-th variable header (0-based). */
  variableHeaderLength?: { index: number; length: number };
  /** Drop this many bytes from the end of the file. */
  truncateBy?: number;
  /** Append this many extra bytes to the file. */
  appendBytes?: number;
}

export interface FseqV2Options {
  channels: number;
  frames: number;
  stepMs?: number;
  compression?: FseqCompressionName;
  /** Used compressed blocks (compressed files only). May exceed 255 (12-bit count, FSEQ 2.1). Default min(frames, 4). */
  blocks?: number;
  /** Block-index slots to reserve (≥ blocks); the extra slots are written as unused zero entries. */
  blockSlots?: number;
  /** Bytes per compressed block payload. Default 24; block i gets blockBytes + (i % 5). */
  blockBytes?: number;
  sparseRanges?: { start: number; count: number }[];
  variableHeaders?: FseqVariableHeaderInput[];
  extendedData?: FseqExtendedDataInput[];
  uniqueId?: bigint;
  /** Minor version; default the lowest that can express the options (0, 1 for >255 blocks, 2 for ED). */
  minor?: number;
  magic?: 'PSEQ' | 'FSEQ';
  lie?: FseqLie;
}

export interface FseqV1Options {
  channels: number;
  frames: number;
  stepMs?: number;
  /** Shorthand for an `mf` variable header. */
  mediaFile?: string;
  variableHeaders?: FseqVariableHeaderInput[];
  magic?: 'PSEQ' | 'FSEQ';
  minor?: number;
  lie?: FseqLie;
}

const COMPRESSION_CODES: Record<FseqCompressionName, number> = { none: 0, zstd: 1, zlib: 2 };

function roundUp4(n: number): number {
  return (n + 3) & ~3;
}

function variableHeaderBytes(v: FseqVariableHeaderInput): Uint8Array {
  const data = typeof v.value === 'string' ? Buffer.concat([Buffer.from(v.value, 'utf8'), Buffer.from([0])]) : v.value;
  const out = Buffer.alloc(4 + data.length);
  out.writeUInt16LE(out.length, 0);
  out.write(v.code.slice(0, 2).padEnd(2, '\0'), 2, 'latin1');
  out.set(data, 4);
  return out;
}

/** Deterministic filler so files are reproducible (and trivially not malware). */
function fill(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Frame data for uncompressed files: a simple ramp, like a chase effect. */
function frameData(frames: number, channels: number): Buffer {
  const out = Buffer.alloc(frames * channels);
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < channels; c++) out[f * channels + c] = (f * 7 + c * 3) & 0xff;
  }
  return out;
}

interface Layout {
  /** Absolute offsets of each variable header's length field. */
  variableHeaderOffsets: number[];
  /** Absolute offset of the block index (v2). */
  blockIndexOffset: number;
}

function applyLie(file: Buffer, lie: FseqLie | undefined, layout: Layout, version: 1 | 2): Buffer {
  if (lie === undefined) return file;
  if (lie.magic !== undefined) file.write(lie.magic.slice(0, 4).padEnd(4, '\0'), 0, 'latin1');
  if (lie.channelDataOffset !== undefined) file.writeUInt16LE(lie.channelDataOffset, 4);
  if (lie.minorVersion !== undefined) file[6] = lie.minorVersion;
  if (lie.majorVersion !== undefined) file[7] = lie.majorVersion;
  if (lie.headerLength !== undefined) file.writeUInt16LE(lie.headerLength, 8);
  if (lie.channelCount !== undefined) file.writeUInt32LE(lie.channelCount, 10);
  if (lie.frameCount !== undefined) file.writeUInt32LE(lie.frameCount, 14);
  if (lie.stepMs !== undefined) file[18] = lie.stepMs;
  if (version === 2) {
    if (lie.compressionType !== undefined) file[20] = ((file[20] ?? 0) & 0xf0) | (lie.compressionType & 0x0f);
    if (lie.sparseRangeCount !== undefined) file[22] = lie.sparseRangeCount;
    if (lie.block !== undefined) {
      const at = layout.blockIndexOffset + lie.block.index * 8;
      if (lie.block.firstFrame !== undefined) file.writeUInt32LE(lie.block.firstFrame, at);
      if (lie.block.length !== undefined) file.writeUInt32LE(lie.block.length, at + 4);
    }
  }
  if (lie.variableHeaderLength !== undefined) {
    const at = layout.variableHeaderOffsets[lie.variableHeaderLength.index];
    if (at === undefined) throw new Error(`no variable header #${lie.variableHeaderLength.index} to lie about`);
    file.writeUInt16LE(lie.variableHeaderLength.length, at);
  }
  let out = file;
  if (lie.truncateBy !== undefined) out = out.subarray(0, Math.max(0, out.length - lie.truncateBy));
  if (lie.appendBytes !== undefined) out = Buffer.concat([out, fill(lie.appendBytes, 99)]);
  return out;
}

/** A complete FSEQ v2.x file whose size matches its header exactly (unless `lie` says otherwise). */
export function buildFseqV2(opts: FseqV2Options): Buffer {
  const stepMs = opts.stepMs ?? 50;
  const compression = opts.compression ?? 'none';
  const ranges = opts.sparseRanges ?? [];
  const vars = opts.variableHeaders ?? [];
  const extended = opts.extendedData ?? [];
  const blocks = compression === 'none' ? 0 : (opts.blocks ?? Math.min(opts.frames, 4));
  const blockSlots = opts.blockSlots ?? blocks;
  if (blocks > opts.frames) throw new Error(`buildFseqV2: ${blocks} blocks need at least as many frames (${opts.frames})`);
  if (blockSlots < blocks || blockSlots > 4095) throw new Error(`buildFseqV2: blockSlots must be in ${blocks}..4095`);
  if (compression !== 'none' && blocks === 0) throw new Error('buildFseqV2: a compressed file needs at least one block');
  const minor = opts.minor ?? (extended.length > 0 ? 2 : blockSlots > 255 ? 1 : 0);

  const headerLength = 32 + blockSlots * 8 + ranges.length * 6;
  const varBytes = vars.map(variableHeaderBytes);
  const varTotal = varBytes.reduce((s, b) => s + b.length, 0) + extended.length * 18;
  const offset = roundUp4(headerLength + varTotal);
  if (offset > 0xffff) throw new Error(`buildFseqV2: header of ${offset} bytes does not fit the u16 channel data offset`);

  const blockBytes = opts.blockBytes ?? 24;
  const blockLengths = Array.from({ length: blocks }, (_, i) => blockBytes + (i % 5));
  const channelData =
    compression === 'none' ? frameData(opts.frames, opts.channels) : Buffer.concat(blockLengths.map((len, i) => fill(len, i + 1)));
  const dataEnd = offset + channelData.length;

  const header = Buffer.alloc(offset);
  header.write(opts.magic ?? 'PSEQ', 0, 'latin1');
  header.writeUInt16LE(offset, 4);
  header[6] = minor;
  header[7] = 2;
  header.writeUInt16LE(headerLength, 8);
  header.writeUInt32LE(opts.channels, 10);
  header.writeUInt32LE(opts.frames, 14);
  header[18] = stepMs;
  header[19] = 0;
  header[20] = ((blockSlots >> 4) & 0xf0) | COMPRESSION_CODES[compression];
  header[21] = blockSlots & 0xff;
  header[22] = ranges.length;
  header[23] = 0;
  header.writeBigUInt64LE(opts.uniqueId ?? 1_700_000_000_000_000n, 24);

  let pos = 32;
  const blockIndexOffset = pos;
  for (let i = 0; i < blockSlots; i++, pos += 8) {
    if (i >= blocks) continue; // unused slot: zero first frame, zero length
    header.writeUInt32LE(Math.floor((i * opts.frames) / blocks), pos);
    header.writeUInt32LE(blockLengths[i] ?? 0, pos + 4);
  }
  for (const r of ranges) {
    header.writeUIntLE(r.start, pos, 3);
    header.writeUIntLE(r.count, pos + 3, 3);
    pos += 6;
  }
  const variableHeaderOffsets: number[] = [];
  for (const b of varBytes) {
    variableHeaderOffsets.push(pos);
    header.set(b, pos);
    pos += b.length;
  }
  let extOffset = dataEnd;
  for (const e of extended) {
    variableHeaderOffsets.push(pos);
    header.writeUInt16LE(18, pos);
    header.write('ED', pos + 2, 'latin1');
    header.write(e.code.slice(0, 2).padEnd(2, '\0'), pos + 4, 'latin1');
    header.writeBigUInt64LE(BigInt(extOffset), pos + 6);
    header.writeUInt32LE(e.payload.length, pos + 14);
    pos += 18;
    extOffset += e.payload.length;
  }

  const file = Buffer.concat([header, channelData, ...extended.map((e) => e.payload)]);
  return applyLie(file, opts.lie, { variableHeaderOffsets, blockIndexOffset }, 2);
}

export interface FseqFramesOptions {
  /** Each frame's channel bytes (all the same length: the channel count). */
  frames: Uint8Array[];
  compression: FseqCompressionName;
  /** Compressed files: frames per block (default 8); the last block may hold fewer. */
  framesPerBlock?: number;
  sparseRanges?: { start: number; count: number }[];
  stepMs?: number;
  lie?: FseqLie;
}

/**
 * An FSEQ v2.0 file with the given frames, really compressed: zlib with node:zlib, zstd with
 * Debian's `zstd` command (Node 20 has no zstd compressor), one compressed frame per block.
 */
export function buildFseqV2Frames(opts: FseqFramesOptions): Buffer {
  const channels = opts.frames[0]?.length ?? 0;
  const ranges = opts.sparseRanges ?? [];
  const perBlock = opts.framesPerBlock ?? 8;
  const starts = opts.compression === 'none' ? [] : opts.frames.map((_, i) => i).filter((i) => i % perBlock === 0);
  const compress = (raw: Buffer): Buffer =>
    opts.compression === 'zstd' ? execFileSync('zstd', ['-q', '-c', '-3'], { input: raw }) : deflateSync(raw);
  const payloads = starts.map((first) => compress(Buffer.concat(opts.frames.slice(first, first + perBlock))));
  const headerLength = 32 + starts.length * 8 + ranges.length * 6;
  const offset = roundUp4(headerLength);
  const header = Buffer.alloc(offset);
  header.write('PSEQ', 0, 'latin1');
  header.writeUInt16LE(offset, 4);
  header[7] = 2;
  header.writeUInt16LE(headerLength, 8);
  header.writeUInt32LE(channels, 10);
  header.writeUInt32LE(opts.frames.length, 14);
  header[18] = opts.stepMs ?? 50;
  header[20] = ((starts.length >> 4) & 0xf0) | COMPRESSION_CODES[opts.compression];
  header[21] = starts.length & 0xff;
  header[22] = ranges.length;
  header.writeBigUInt64LE(1_700_000_000_000_000n, 24);
  let pos = 32;
  starts.forEach((first, i) => {
    header.writeUInt32LE(first, pos);
    header.writeUInt32LE(payloads[i]!.length, pos + 4);
    pos += 8;
  });
  for (const r of ranges) {
    header.writeUIntLE(r.start, pos, 3);
    header.writeUIntLE(r.count, pos + 3, 3);
    pos += 6;
  }
  const data = opts.compression === 'none' ? opts.frames : payloads;
  return applyLie(Buffer.concat([header, ...data]), opts.lie, { variableHeaderOffsets: [], blockIndexOffset: 32 }, 2);
}

/** A complete FSEQ v1.0 file (28-byte header, variable headers, uncompressed frames). */
export function buildFseqV1(opts: FseqV1Options): Buffer {
  const vars = [...(opts.mediaFile !== undefined ? [{ code: 'mf', value: opts.mediaFile }] : []), ...(opts.variableHeaders ?? [])];
  const varBytes = vars.map(variableHeaderBytes);
  const offset = roundUp4(28 + varBytes.reduce((s, b) => s + b.length, 0));
  const header = Buffer.alloc(offset);
  header.write(opts.magic ?? 'PSEQ', 0, 'latin1');
  header.writeUInt16LE(offset, 4);
  header[6] = opts.minor ?? 0;
  header[7] = 1;
  header.writeUInt16LE(28, 8);
  header.writeUInt32LE(opts.channels, 10);
  header.writeUInt32LE(opts.frames, 14);
  header[18] = opts.stepMs ?? 50;
  header[24] = 1; // gamma
  header[25] = 2; // RGB colour encoding
  let pos = 28;
  const variableHeaderOffsets: number[] = [];
  for (const b of varBytes) {
    variableHeaderOffsets.push(pos);
    header.set(b, pos);
    pos += b.length;
  }
  const file = Buffer.concat([header, frameData(opts.frames, opts.channels)]);
  return applyLie(file, opts.lie, { variableHeaderOffsets, blockIndexOffset: 0 }, 1);
}

/** An ESEQ effect sequence: 20-byte header then raw frames. */
export function buildEseq(opts: { channels: number; frames: number; modelCount?: number; startChannel?: number; modelSize?: number }): Buffer {
  const header = Buffer.alloc(20);
  header.write('ESEQ', 0, 'latin1');
  header.writeUInt32LE(opts.modelCount ?? 1, 4);
  header.writeUInt32LE(opts.channels, 8);
  header.writeUInt32LE(opts.startChannel ?? 1, 12);
  header.writeUInt32LE(opts.modelSize ?? opts.channels, 16);
  return Buffer.concat([header, frameData(opts.frames, opts.channels)]);
}

// ---------------------------------------------------------------------------------------------
// XSQ

export type XsqHeadField = 'version' | 'author' | 'song' | 'artist' | 'album' | 'sequenceTiming' | 'sequenceType' | 'mediaFile' | 'sequenceDuration';

export interface XsqBuildOptions {
  /** Models with effects in ElementEffects. Default 3. */
  models?: number;
  /** Timing tracks. Default 2. */
  timingTracks?: number;
  /** Timing marks per timing track (split over two layers, like a lyrics track). Default 5. */
  marksPerTrack?: number;
  /** Effects per model EffectLayer. Default 3. */
  effectsPerLayer?: number;
  /** Extra effects on the first model's layer, to make big files. Default 0. */
  extraEffects?: number;
  /** EffectDB entries. Default 4. */
  effectDb?: number;
  /** ColorPalettes entries. Default 3. */
  palettes?: number;
  /** The intended (decoded) head values; override any. */
  head?: Partial<Record<XsqHeadField, string>>;
  /** Head fields written escaped twice, as some real files are. Default ['artist']. */
  doubleEscape?: XsqHeadField[];
  fixedPointTiming?: boolean;
}

export interface BuiltXsq {
  xml: string;
  expected: XsqMetadata;
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const DEFAULT_HEAD: Record<XsqHeadField, string> = {
  version: '2024.05',
  author: 'Unit Test',
  song: 'Carol of the Bells',
  artist: 'Simon & Garfunkel',
  album: 'Holiday <Live>',
  sequenceTiming: '50 ms',
  sequenceType: 'Media',
  mediaFile: 'C:\\Users\\show\\Music\\Carol of the Bells.mp3',
  sequenceDuration: '221.306',
};

function basename(path: string): string {
  const parts = path.split(/[\\/]/).filter((p) => p.trim() !== '');
  return parts[parts.length - 1]?.trim() ?? '';
}

/**
 * An xLights-shaped sequence that uses every effect placement (EffectLayer, Strand, Strand/Node,
 * SubModelEffectLayer), timing marks, EffectDB entries, palettes, DisplayElements (which must not
 * be counted) and a multiply-escaped head value. Returns the metadata the parser must produce.
 */
export function buildXsq(opts: XsqBuildOptions = {}): BuiltXsq {
  const models = opts.models ?? 3;
  const timingTracks = opts.timingTracks ?? 2;
  const marksPerTrack = opts.marksPerTrack ?? 5;
  const perLayer = opts.effectsPerLayer ?? 3;
  const extra = opts.extraEffects ?? 0;
  const effectDb = opts.effectDb ?? 4;
  const palettes = opts.palettes ?? 3;
  const fixed = opts.fixedPointTiming ?? true;
  const head = { ...DEFAULT_HEAD, ...opts.head };
  const doubleEscape = new Set(opts.doubleEscape ?? ['artist']);
  const t = (ms: number): string => (fixed ? String(ms) : (ms / 1000).toFixed(3));

  const lines: string[] = [];
  lines.push('<?xml version="1.0" encoding="UTF-8"?>');
  lines.push(
    `<xsequence BaseChannel="0" ChanCtrlBasic="0" ChanCtrlColor="0"${fixed ? ' FixedPointTiming="1"' : ''} ModelBlending="true">`,
  );
  lines.push('  <head>');
  const headOrder: (XsqHeadField | 'author-email' | 'author-website' | 'MusicURL' | 'comment')[] = [
    'version',
    'author',
    'author-email',
    'author-website',
    'song',
    'artist',
    'album',
    'MusicURL',
    'comment',
    'sequenceTiming',
    'sequenceType',
    'mediaFile',
    'sequenceDuration',
  ];
  for (const field of headOrder) {
    if (field === 'author-email' || field === 'author-website' || field === 'MusicURL' || field === 'comment') {
      lines.push(`    <${field}></${field}>`);
      continue;
    }
    const value = head[field];
    const once = escapeXml(value);
    lines.push(`    <${field}>${doubleEscape.has(field) ? escapeXml(once) : once}</${field}>`);
  }
  lines.push('    <imageDir/>');
  lines.push('  </head>');
  lines.push('  <nextid>1</nextid>');
  lines.push('  <Jukebox/>');

  lines.push('  <ColorPalettes>');
  for (let i = 0; i < palettes; i++) lines.push(`    <ColorPalette>C_BUTTON_Palette1=#${(0x100000 + i * 4099).toString(16).slice(-6).toUpperCase()},C_CHECKBOX_Palette1=1</ColorPalette>`);
  lines.push('  </ColorPalettes>');

  lines.push('  <EffectDB>');
  for (let i = 0; i < effectDb; i++) lines.push(`    <Effect>E_SLIDER_Bars_BarCount=${i + 1},E_CHOICE_Bars_Direction=up</Effect>`);
  lines.push('  </EffectDB>');

  lines.push('  <DataLayers>');
  lines.push('    <DataLayer lor_params="0" channel_offset="0" num_channels="0" num_frames="0" data="&lt;rendered: erase-mode&gt;" source="&lt;auto-generated&gt;" name="Nutcracker"/>');
  lines.push('  </DataLayers>');

  // DisplayElements repeat every model/timing Element with a type attribute: not to be counted.
  lines.push('  <DisplayElements>');
  for (let i = 0; i < timingTracks; i++) lines.push(`    <Element collapsed="0" type="timing" name="Timing ${i}" visible="1" active="1"/>`);
  for (let i = 0; i < models; i++) lines.push(`    <Element collapsed="0" type="model" name="Model ${i}" visible="1"/>`);
  lines.push('    <Element collapsed="0" type="model" name="Hidden Model" visible="0"/>');
  lines.push('  </DisplayElements>');

  lines.push('  <ElementEffects>');
  let marks = 0;
  for (let i = 0; i < timingTracks; i++) {
    lines.push(`    <Element type="timing" name="Timing ${i}">`);
    const firstLayer = Math.ceil(marksPerTrack / 2);
    for (const [layer, count] of [
      [0, firstLayer],
      [1, marksPerTrack - firstLayer],
    ] as const) {
      if (count === 0) {
        lines.push('      <EffectLayer/>');
        continue;
      }
      lines.push('      <EffectLayer>');
      for (let m = 0; m < count; m++) {
        lines.push(`        <Effect label="${layer === 0 ? 'word' : 'AI'} ${m}" startTime="${t(m * 500)}" endTime="${t(m * 500 + 500)}"/>`);
        marks++;
      }
      lines.push('      </EffectLayer>');
    }
    lines.push('    </Element>');
  }

  let effects = 0;
  let id = 0;
  const effect = (indent: string, ref: number, start: number): string => {
    effects++;
    return `${indent}<Effect ref="${ref % Math.max(effectDb, 1)}" name="Bars" id="${id++}" startTime="${t(start)}" endTime="${t(start + 250)}" palette="${ref % Math.max(palettes, 1)}"/>`;
  };
  for (let i = 0; i < models; i++) {
    lines.push(`    <Element type="model" name="Model ${i}">`);
    lines.push('      <EffectLayer>');
    for (let e = 0; e < perLayer; e++) lines.push(effect('        ', e, e * 250));
    if (i === 0) for (let e = 0; e < extra; e++) lines.push(effect('        ', e, (perLayer + e) * 250));
    lines.push('      </EffectLayer>');
    lines.push('      <EffectLayer/>');
    lines.push('      <SubModelEffectLayer name="Outer">');
    lines.push(effect('        ', 1, 0));
    lines.push(effect('        ', 2, 250));
    lines.push('      </SubModelEffectLayer>');
    lines.push('      <Strand index="0">');
    lines.push(effect('        ', 0, 500));
    lines.push('        <Node index="3">');
    lines.push(effect('          ', 3, 750));
    lines.push(effect('          ', 1, 1000));
    lines.push('        </Node>');
    lines.push('      </Strand>');
    lines.push('    </Element>');
  }
  lines.push('  </ElementEffects>');
  lines.push('  <lastView>Master View</lastView>');
  lines.push('</xsequence>');

  const media = basename(head.mediaFile);
  const timing = /^(\d+)\s*ms$/.exec(head.sequenceTiming);
  const expected: XsqMetadata = {
    xlightsVersion: head.version.trim() || null,
    sequenceType: head.sequenceType.trim() || null,
    sequenceTimingMs: timing ? Number(timing[1]) : null,
    durationMs: /^\d+(\.\d+)?$/.test(head.sequenceDuration) ? Math.round(Number(head.sequenceDuration) * 1000) : null,
    mediaFile: media === '' ? null : media,
    song: head.song.trim() || null,
    artist: head.artist.trim() || null,
    album: head.album.trim() || null,
    author: head.author.trim() || null,
    modelCount: models,
    timingTrackCount: timingTracks,
    effectCount: effects,
    timingMarkCount: marks,
    effectDbCount: effectDb,
    paletteCount: palettes,
    fixedPointTiming: fixed,
  };
  return { xml: `${lines.join('\n')}\n`, expected };
}

/** The classic "billion laughs" entity bomb (≈3 GB if expanded), on an xsequence root. */
export function buildXmlBomb(): string {
  const entities = ['<!ENTITY lol "lol">'];
  for (let i = 1; i <= 9; i++) {
    const prev = i === 1 ? 'lol' : `lol${i - 1}`;
    entities.push(`<!ENTITY lol${i} "${Array.from({ length: 10 }, () => `&${prev};`).join('')}">`);
  }
  return `<?xml version="1.0"?>\n<!DOCTYPE xsequence [\n  ${entities.join('\n  ')}\n]>\n<xsequence><head><song>&lol9;</song></head></xsequence>\n`;
}

// ---------------------------------------------------------------------------------------------
// PNG

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A tiny valid PNG (2×2 RGBA) with correct CRCs. */
export function buildPng(): Buffer {
  const width = 2;
  const height = 2;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc(height * (1 + width * 4));
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * 4);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) raw.set([255 * x, 255 * y, 128, 255], row + 1 + x * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Streams

/** Yield `data` in chunks of `size` bytes (default 7, to cross every token boundary). */
export async function* chunked(data: Uint8Array | string, size = 7): AsyncGenerator<Uint8Array> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, Math.min(i + size, bytes.length));
}
