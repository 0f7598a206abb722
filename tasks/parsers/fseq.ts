/**
 * FSEQ (Falcon Player / xLights rendered sequence) header parser.
 *
 * Pure: bytes in, data out. The whole header lives in the first `channelDataOffset` bytes (a u16,
 * so at most 65535), which is why callers only hand us the head of the file and the file size is
 * checked separately with `checkFseqSize` once it is known. The layout follows FPP's
 * src/fseq/FSEQFile.cpp and docs/FSEQ_Sequence_File_Format.txt (all integers little-endian).
 *
 * Formats handled:
 * - v1.x (`PSEQ`, older `FSEQ` magic): 28-byte fixed header, variable headers from byte 28.
 * - v2.0 / 2.1 / 2.2: 32-byte fixed header, block index, sparse ranges, variable headers;
 *   2.1 added the 12-bit block count, 2.2 the `ED` extended-data pointers.
 * - `ESEQ` (xLights/FPP effect sequence): a 20-byte header and raw uncompressed frames. FPP opens
 *   it as an uncompressed v2.0 file with one sparse range, a fixed 50 ms step and a frame count
 *   derived from the file size, and so do we; that is why `parseFseqHeader` needs `fileSize` for
 *   ESEQ (FSEQ_ESEQ_SIZE_REQUIRED without it).
 */

import { ParseError, type ParseErrorCode } from './errors.js';

export type FseqMagic = 'PSEQ' | 'FSEQ' | 'ESEQ';
export type FseqCompression = 'none' | 'zstd' | 'zlib';

export interface FseqSparseRange {
  start: number;
  count: number;
}

export interface FseqVariableHeader {
  /** Two-character code; for an `ED` pointer this is the code of the data it points at. */
  code: string;
  /** Bytes of data (without the 4-byte length+code prefix); for `ED`, the length stored elsewhere. */
  length: number;
  /** True when the data lives after the channel data (an FSEQ 2.2 `ED` pointer). */
  extended: boolean;
}

export interface FseqExtendedData {
  code: string;
  offset: number;
  length: number;
}

export interface EseqInfo {
  modelCount: number;
  /** 1-based start channel of the model the effect was rendered for. */
  startChannel: number;
  modelSize: number;
}

export interface FseqHeader {
  magic: FseqMagic;
  /** "major.minor", e.g. "2.0". */
  version: string;
  majorVersion: number;
  minorVersion: number;
  channelCount: number;
  frameCount: number;
  stepTimeMs: number;
  /** 1000 / stepTimeMs, rounded to 3 decimals. */
  fps: number;
  durationMs: number;
  compression: FseqCompression;
  /** Used block-index entries (entries with a non-zero length). */
  blockCount: number;
  /** Block-index entries the header reserves, used or not. */
  blockSlots: number;
  /** Σ of the used blocks' lengths (compressed files only; null when uncompressed). */
  compressedDataLength: number | null;
  sparseRanges: FseqSparseRange[];
  /** u64 as a decimal string (JSON-safe); null for v1 and ESEQ, which have none. */
  uniqueId: string | null;
  /** Basename of the `mf` variable header's path. */
  mediaFile: string | null;
  /** The `sp` variable header, e.g. "xLights Macintosh 2019.22". */
  producer: string | null;
  variableHeaders: FseqVariableHeader[];
  extendedData: FseqExtendedData[];
  /** Offset of the first channel-data byte (= header size including variable headers and padding). */
  channelDataOffset: number;
  /** The header-length field (bytes 8-9); for v2 it must be 32 + slots × 8 + ranges × 6. */
  headerLength: number;
  /** ESEQ-only facts; null otherwise. */
  eseq: EseqInfo | null;
  /** Oddities a reader like FPP tolerates but a human may want to know about. */
  warnings: string[];
}

export interface ParseFseqOptions {
  /** Total file size; required for ESEQ, whose frame count is derived from it. */
  fileSize?: number;
}

const V1_FIXED = 28;
const V2_FIXED = 32;
const ESEQ_FIXED = 20;
/** FPP assumes this step for ESEQ files, which have no step field. */
const ESEQ_STEP_MS = 50;
const ED_ENTRY_LENGTH = 18;

const COMPRESSIONS: readonly FseqCompression[] = ['none', 'zstd', 'zlib'];

class Reader {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get length(): number {
    return this.bytes.length;
  }
  u8(at: number): number {
    return this.view.getUint8(at);
  }
  u16(at: number): number {
    return this.view.getUint16(at, true);
  }
  u24(at: number): number {
    return this.view.getUint16(at, true) | (this.view.getUint8(at + 2) << 16);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  u64(at: number): bigint {
    return this.view.getBigUint64(at, true);
  }
  ascii(at: number, length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) {
      const c = this.u8(at + i);
      // Codes are meant to be printable ASCII; escape anything else so records stay readable.
      out += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
    }
    return out;
  }
}

function fail(code: ParseErrorCode, message: string, details?: Record<string, string | number | boolean | null>): never {
  throw new ParseError(code, message, details ? { details } : {});
}

function describeMagic(bytes: Uint8Array): string {
  const shown = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return shown.length > 0 ? shown : '(empty)';
}

/**
 * Parse an FSEQ/ESEQ header from the first bytes of a file.
 * Pass at least `channelDataOffset` bytes (65535 + a few always suffices).
 */
export function parseFseqHeader(head: Uint8Array, options: ParseFseqOptions = {}): FseqHeader {
  if (head.length < 4) {
    fail('FSEQ_TRUNCATED', `FSEQ file is too short to hold a header: ${head.length} bytes`, { actual: head.length });
  }
  const magic = String.fromCharCode(head[0] ?? 0, head[1] ?? 0, head[2] ?? 0, head[3] ?? 0);
  if (magic === 'ESEQ') return parseEseq(new Reader(head), options.fileSize);
  if (magic !== 'PSEQ' && magic !== 'FSEQ') {
    fail('FSEQ_BAD_MAGIC', `not an FSEQ file: expected the magic "PSEQ", "FSEQ" or "ESEQ" but the file starts with ${describeMagic(head)}`);
  }
  if (head.length < 8) {
    fail('FSEQ_TRUNCATED', `FSEQ header is truncated: ${head.length} bytes is too short to hold the version fields`, { actual: head.length });
  }
  const r = new Reader(head);
  const minor = r.u8(6);
  const major = r.u8(7);
  if (major !== 1 && major !== 2) {
    fail('FSEQ_UNSUPPORTED_VERSION', `FSEQ version ${major}.${minor} is not supported (this parser understands major versions 1 and 2)`, {
      majorVersion: major,
      minorVersion: minor,
    });
  }
  return major === 1 ? parseV1(r, magic, minor) : parseV2(r, magic, minor);
}

interface Common {
  channelDataOffset: number;
  headerLength: number;
  channelCount: number;
  frameCount: number;
  stepTimeMs: number;
}

function readCommon(r: Reader, fixed: number, version: string): Common {
  if (r.length < fixed) {
    fail('FSEQ_TRUNCATED', `FSEQ ${version} header is truncated: the fixed header is ${fixed} bytes but only ${r.length} are available`, {
      expected: fixed,
      actual: r.length,
    });
  }
  const common: Common = {
    channelDataOffset: r.u16(4),
    headerLength: r.u16(8),
    channelCount: r.u32(10),
    frameCount: r.u32(14),
    stepTimeMs: r.u8(18),
  };
  checkCounts(common.channelCount, common.frameCount, common.stepTimeMs);
  if (common.channelDataOffset < fixed) {
    fail('FSEQ_BAD_HEADER', `FSEQ ${version} header is invalid: the channel data offset ${common.channelDataOffset} is inside the ${fixed}-byte fixed header`, {
      channelDataOffset: common.channelDataOffset,
    });
  }
  return common;
}

function checkCounts(channelCount: number, frameCount: number, stepTimeMs: number): void {
  if (channelCount === 0) fail('FSEQ_ZERO_CHANNELS', 'FSEQ header declares 0 channels per frame; a sequence needs at least one channel');
  if (frameCount === 0) fail('FSEQ_ZERO_FRAMES', 'FSEQ header declares 0 frames; the sequence is empty');
  if (stepTimeMs === 0) fail('FSEQ_ZERO_STEP_TIME', 'FSEQ header declares a step time of 0 ms; frame timing is undefined');
  // u32 × u32 can exceed 2^53; no real sequence is anywhere near that, so treat it as corruption
  // instead of computing sizes with lost precision.
  if (!Number.isSafeInteger(channelCount * frameCount)) {
    fail('FSEQ_BAD_HEADER', `FSEQ header declares ${frameCount} frames × ${channelCount} channels, an implausible amount of channel data`);
  }
}

function requireHeaderBytes(r: Reader, channelDataOffset: number): void {
  if (r.length < channelDataOffset) {
    fail(
      'FSEQ_TRUNCATED',
      `FSEQ header is truncated: the channel data starts at byte ${channelDataOffset} but only ${r.length} bytes are available`,
      { expected: channelDataOffset, actual: r.length },
    );
  }
}

function timing(frameCount: number, stepTimeMs: number): { fps: number; durationMs: number } {
  return { fps: Math.round((1000 / stepTimeMs) * 1000) / 1000, durationMs: frameCount * stepTimeMs };
}

function parseV1(r: Reader, magic: FseqMagic, minor: number): FseqHeader {
  const version = `1.${minor}`;
  const c = readCommon(r, V1_FIXED, version);
  requireHeaderBytes(r, c.channelDataOffset);
  // FPP starts v1 variable headers at the fixed 28 bytes whatever bytes 8-9 say.
  const vars = parseVariableHeaders(r, V1_FIXED, c.channelDataOffset);
  return {
    magic,
    version,
    majorVersion: 1,
    minorVersion: minor,
    channelCount: c.channelCount,
    frameCount: c.frameCount,
    stepTimeMs: c.stepTimeMs,
    ...timing(c.frameCount, c.stepTimeMs),
    compression: 'none',
    blockCount: 0,
    blockSlots: 0,
    compressedDataLength: null,
    sparseRanges: [],
    uniqueId: null,
    mediaFile: vars.mediaFile,
    producer: vars.producer,
    variableHeaders: vars.headers,
    extendedData: vars.extended,
    channelDataOffset: c.channelDataOffset,
    headerLength: c.headerLength,
    eseq: null,
    warnings: vars.warnings,
  };
}

function parseV2(r: Reader, magic: FseqMagic, minor: number): FseqHeader {
  const version = `2.${minor}`;
  const c = readCommon(r, V2_FIXED, version);
  const warnings: string[] = [];
  if (minor > 2) warnings.push(`FSEQ minor version 2.${minor} is newer than 2.2; fields added after 2.2 are not understood`);

  const b20 = r.u8(20);
  const compressionType = b20 & 0x0f;
  const compression = COMPRESSIONS[compressionType];
  if (compression === undefined) {
    fail('FSEQ_UNSUPPORTED_COMPRESSION', `FSEQ compression type ${compressionType} is not supported (known: 0 none, 1 zstd, 2 zlib)`, {
      compressionType,
    });
  }
  // 2.1+ keeps the upper 4 bits of the 12-bit block count in the high nibble of byte 20; 2.0
  // writers always leave that nibble 0, so the same formula reads both.
  const blockSlots = ((b20 & 0xf0) << 4) | r.u8(21);
  const rangeCount = r.u8(22);
  const computedHeaderLength = V2_FIXED + blockSlots * 8 + rangeCount * 6;
  if (c.headerLength !== computedHeaderLength) {
    fail(
      'FSEQ_BAD_HEADER',
      `FSEQ ${version} header length field says ${c.headerLength} bytes, but ${blockSlots} block index entries and ${rangeCount} sparse ranges need 32 + ${blockSlots}×8 + ${rangeCount}×6 = ${computedHeaderLength}`,
      { headerLength: c.headerLength, expected: computedHeaderLength },
    );
  }
  if (c.channelDataOffset < computedHeaderLength) {
    fail(
      'FSEQ_BAD_HEADER',
      `FSEQ ${version} channel data offset ${c.channelDataOffset} lies inside the ${computedHeaderLength}-byte block index and sparse range table`,
      { channelDataOffset: c.channelDataOffset, headerLength: computedHeaderLength },
    );
  }
  requireHeaderBytes(r, c.channelDataOffset);

  // Block index. Zero-length entries are slots the writer reserved but never filled (it sizes the
  // index before compressing); only entries with data are blocks.
  let pos = V2_FIXED;
  let blockCount = 0;
  let dataLength = 0;
  let lastFirstFrame = 0;
  let sawEmptySlot = false;
  for (let i = 0; i < blockSlots; i++, pos += 8) {
    const firstFrame = r.u32(pos);
    const length = r.u32(pos + 4);
    if (length === 0) {
      sawEmptySlot = true;
      continue;
    }
    if (sawEmptySlot) warnings.push(`block index slot ${i} is used after an empty slot`);
    sawEmptySlot = false;
    // FPP indexes frames within a block as (frame - firstFrame) and searches the table forwards,
    // so an unordered table or one not starting at frame 0 makes every reader misbehave.
    if (blockCount === 0 && firstFrame !== 0) {
      fail('FSEQ_BAD_BLOCK_INDEX', `FSEQ block index is corrupt: the first block starts at frame ${firstFrame} instead of 0`, { firstFrame });
    }
    if (firstFrame < lastFirstFrame) {
      fail('FSEQ_BAD_BLOCK_INDEX', `FSEQ block index is corrupt: block ${i} starts at frame ${firstFrame}, before the previous block's frame ${lastFirstFrame}`, {
        block: i,
        firstFrame,
        previousFirstFrame: lastFirstFrame,
      });
    }
    if (firstFrame >= c.frameCount) {
      fail('FSEQ_BAD_BLOCK_INDEX', `FSEQ block index is corrupt: block ${i} starts at frame ${firstFrame} but the sequence has only ${c.frameCount} frames`, {
        block: i,
        firstFrame,
        frameCount: c.frameCount,
      });
    }
    lastFirstFrame = firstFrame;
    blockCount++;
    dataLength += length;
  }
  if (compression !== 'none' && blockCount === 0) {
    fail('FSEQ_BAD_BLOCK_INDEX', `FSEQ file is ${compression}-compressed but its block index has no used entries (${blockSlots} slots, all empty)`, {
      blockSlots,
    });
  }
  if (compression === 'none' && blockCount > 0) {
    warnings.push(`uncompressed file lists ${blockCount} compressed blocks; they are ignored`);
  }

  const sparseRanges: FseqSparseRange[] = [];
  let sparseTotal = 0;
  for (let i = 0; i < rangeCount; i++, pos += 6) {
    const start = r.u24(pos);
    const count = r.u24(pos + 3);
    if (count === 0) {
      fail('FSEQ_BAD_SPARSE_RANGES', `FSEQ sparse range ${i} (start channel ${start}) has 0 channels`, { range: i, start });
    }
    sparseRanges.push({ start, count });
    sparseTotal += count;
  }
  // With sparse ranges the frame holds exactly the ranges' channels back to back; the writer
  // recomputes the channel count from them, so a difference means a damaged header.
  if (rangeCount > 0 && sparseTotal !== c.channelCount) {
    fail(
      'FSEQ_BAD_SPARSE_RANGES',
      `FSEQ sparse ranges cover ${sparseTotal} channels but the header declares ${c.channelCount} channels per frame`,
      { sparseChannels: sparseTotal, channelCount: c.channelCount },
    );
  }

  const vars = parseVariableHeaders(r, pos, c.channelDataOffset);
  const uniqueId = r.u64(24).toString();

  return {
    magic,
    version,
    majorVersion: 2,
    minorVersion: minor,
    channelCount: c.channelCount,
    frameCount: c.frameCount,
    stepTimeMs: c.stepTimeMs,
    ...timing(c.frameCount, c.stepTimeMs),
    compression,
    blockCount,
    blockSlots,
    compressedDataLength: compression === 'none' ? null : dataLength,
    sparseRanges,
    uniqueId,
    mediaFile: vars.mediaFile,
    producer: vars.producer,
    variableHeaders: vars.headers,
    extendedData: vars.extended,
    channelDataOffset: c.channelDataOffset,
    headerLength: c.headerLength,
    eseq: null,
    warnings: [...warnings, ...vars.warnings],
  };
}

interface VariableHeaders {
  headers: FseqVariableHeader[];
  extended: FseqExtendedData[];
  mediaFile: string | null;
  producer: string | null;
  warnings: string[];
}

function isAllZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** A NUL-terminated string as written by FPP/xLights; anything after the first NUL is ignored. */
function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return utf8.decode(nul === -1 ? bytes : bytes.subarray(0, nul)).trim();
}

/** Basename of a Windows or POSIX path (xLights records whichever OS the sequencer ran on). */
function pathBasename(path: string): string {
  const parts = path.split(/[\\/]/);
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = (parts[i] ?? '').trim();
    if (part !== '') return part;
  }
  return '';
}

function parseVariableHeaders(r: Reader, start: number, end: number): VariableHeaders {
  const out: VariableHeaders = { headers: [], extended: [], mediaFile: null, producer: null, warnings: [] };
  let pos = start;
  // Fewer than 4 bytes left can only be the alignment padding writers add (offset rounded to 4).
  while (end - pos >= 4) {
    const length = r.u16(pos);
    if (length === 0 && isAllZero(r.bytes, pos, end)) break; // zero padding up to the channel data
    if (length < 4) {
      // The length includes its own 4-byte prefix; anything smaller would never advance.
      fail(
        'FSEQ_BAD_VARIABLE_HEADER',
        `FSEQ variable header at byte ${pos} declares length ${length}, less than the 4 bytes of its own length and code`,
        { offset: pos, length },
      );
    }
    if (pos + length > end) {
      fail(
        'FSEQ_BAD_VARIABLE_HEADER',
        `FSEQ variable header "${r.ascii(pos + 2, 2)}" at byte ${pos} declares ${length} bytes, running past the channel data offset ${end}`,
        { offset: pos, length, channelDataOffset: end },
      );
    }
    const code = r.ascii(pos + 2, 2);
    const data = r.bytes.subarray(pos + 4, pos + length);
    if (code === 'ED') {
      if (length !== ED_ENTRY_LENGTH) {
        fail('FSEQ_BAD_VARIABLE_HEADER', `FSEQ extended-data pointer at byte ${pos} is ${length} bytes; it must be exactly ${ED_ENTRY_LENGTH}`, {
          offset: pos,
          length,
        });
      }
      const innerCode = r.ascii(pos + 4, 2);
      const offset64 = r.u64(pos + 6);
      const dataLength = r.u32(pos + 14);
      if (offset64 > BigInt(Number.MAX_SAFE_INTEGER)) {
        fail('FSEQ_BAD_EXTENDED_DATA', `FSEQ extended data "${innerCode}" claims an impossible file offset ${offset64.toString()}`, { code: innerCode });
      }
      const offset = Number(offset64);
      // Extended data is appended after the channel data, never inside the header.
      if (offset < end) {
        fail(
          'FSEQ_BAD_EXTENDED_DATA',
          `FSEQ extended data "${innerCode}" points at byte ${offset}, inside the ${end}-byte header; it must follow the channel data`,
          { code: innerCode, offset, channelDataOffset: end },
        );
      }
      out.headers.push({ code: innerCode, length: dataLength, extended: true });
      out.extended.push({ code: innerCode, offset, length: dataLength });
      if (innerCode === 'mf' || innerCode === 'sp') {
        out.warnings.push(`the "${innerCode}" header is stored as extended data after the channel data and was not read`);
      }
    } else {
      out.headers.push({ code, length: data.length, extended: false });
      if (code === 'mf' && out.mediaFile === null) {
        const name = pathBasename(cString(data));
        out.mediaFile = name === '' ? null : name;
      } else if (code === 'sp' && out.producer === null) {
        const producer = cString(data);
        out.producer = producer === '' ? null : producer;
      }
    }
    pos += length;
  }
  return out;
}

function parseEseq(r: Reader, fileSize: number | undefined): FseqHeader {
  if (r.length < ESEQ_FIXED) {
    fail('FSEQ_TRUNCATED', `ESEQ header is truncated: it is ${ESEQ_FIXED} bytes but only ${r.length} are available`, {
      expected: ESEQ_FIXED,
      actual: r.length,
    });
  }
  if (fileSize === undefined) {
    fail('FSEQ_ESEQ_SIZE_REQUIRED', 'ESEQ files store no frame count; pass the file size to derive it');
  }
  if (!Number.isSafeInteger(fileSize) || fileSize < ESEQ_FIXED) {
    fail('FSEQ_TRUNCATED', `ESEQ file is ${fileSize} bytes, shorter than its ${ESEQ_FIXED}-byte header`, { expected: ESEQ_FIXED, actual: fileSize });
  }
  const modelCount = r.u32(4);
  const channelCount = r.u32(8);
  const startChannel = r.u32(12);
  const modelSize = r.u32(16);
  if (channelCount === 0) fail('FSEQ_ZERO_CHANNELS', 'ESEQ header declares 0 channels per frame; a sequence needs at least one channel');
  const frameCount = Math.floor((fileSize - ESEQ_FIXED) / channelCount);
  checkCounts(channelCount, frameCount, ESEQ_STEP_MS);
  return {
    magic: 'ESEQ',
    // FPP loads an ESEQ as an uncompressed v2.0 sequence; report it the same way.
    version: '2.0',
    majorVersion: 2,
    minorVersion: 0,
    channelCount,
    frameCount,
    stepTimeMs: ESEQ_STEP_MS,
    ...timing(frameCount, ESEQ_STEP_MS),
    compression: 'none',
    blockCount: 0,
    blockSlots: 0,
    compressedDataLength: null,
    // ESEQ start channels are 1-based; FPP turns the model into one 0-based sparse range.
    sparseRanges: [{ start: startChannel > 0 ? startChannel - 1 : 0, count: modelSize }],
    uniqueId: null,
    mediaFile: null,
    producer: null,
    variableHeaders: [],
    extendedData: [],
    channelDataOffset: ESEQ_FIXED,
    headerLength: ESEQ_FIXED,
    eseq: { modelCount, startChannel, modelSize },
    warnings: ['ESEQ files have no step time; FPP plays them at 50 ms per frame'],
  };
}

/** Bytes of channel data the header describes (on disk, i.e. compressed size when compressed). */
function channelDataLength(h: FseqHeader): number {
  return h.compression === 'none' ? h.frameCount * h.channelCount : (h.compressedDataLength ?? 0);
}

/**
 * The exact file size the header describes: channel data offset + channel data (frames × channels
 * uncompressed, Σ block lengths compressed) + Σ extended-data lengths, which writers append
 * straight after the channel data.
 */
export function expectedFseqSize(h: FseqHeader): number {
  const extended = h.extendedData.reduce((sum, e) => sum + e.length, 0);
  return h.channelDataOffset + channelDataLength(h) + extended;
}

function describeLayout(h: FseqHeader): string {
  const data =
    h.compression === 'none'
      ? `${h.frameCount} frames × ${h.channelCount} channels`
      : `${h.blockCount} ${h.compression} blocks totalling ${h.compressedDataLength ?? 0} bytes`;
  const extended = h.extendedData.length === 0 ? '' : ` + ${h.extendedData.length} extended-data entries totalling ${h.extendedData.reduce((s, e) => s + e.length, 0)} bytes`;
  return `channel data offset ${h.channelDataOffset} + ${data}${extended}`;
}

/**
 * Compare the real file size with the header. Returns the problem instead of throwing so the
 * caller can record it next to the metadata it did manage to read.
 */
export function checkFseqSize(h: FseqHeader, actualSize: number): ParseError | null {
  if (h.magic === 'ESEQ') {
    const body = actualSize - h.channelDataOffset;
    if (body < h.channelCount) {
      return new ParseError('FSEQ_TRUNCATED', `ESEQ file is ${actualSize} bytes, too short for one ${h.channelCount}-channel frame after its ${h.channelDataOffset}-byte header`, {
        details: { expected: h.channelDataOffset + h.channelCount, actual: actualSize },
      });
    }
    const partial = body % h.channelCount;
    if (partial !== 0) {
      return new ParseError(
        'FSEQ_SIZE_MISMATCH',
        `ESEQ file ends with a partial frame: ${body} bytes of frames is not a multiple of ${h.channelCount} channels (${partial} bytes left over)`,
        { details: { actual: actualSize, channelCount: h.channelCount, leftover: partial } },
      );
    }
    return null;
  }

  const expected = expectedFseqSize(h);
  if (actualSize < expected) {
    return new ParseError(
      'FSEQ_TRUNCATED',
      `FSEQ file is truncated: it is ${actualSize} bytes but its header describes ${expected} bytes (${describeLayout(h)}); ${expected - actualSize} bytes are missing`,
      { details: { expected, actual: actualSize } },
    );
  }
  if (actualSize > expected) {
    return new ParseError(
      'FSEQ_SIZE_MISMATCH',
      `FSEQ file is ${actualSize} bytes, ${actualSize - expected} more than the ${expected} bytes its header describes (${describeLayout(h)}); the header does not match the data`,
      { details: { expected, actual: actualSize } },
    );
  }
  // Writers append extended data back to back after the channel data, so every pointer must land
  // in that tail; one pointing into the channel data (or past the end) means a damaged header.
  const tailStart = h.channelDataOffset + channelDataLength(h);
  for (const e of h.extendedData) {
    if (e.offset < tailStart || e.offset + e.length > expected) {
      return new ParseError(
        'FSEQ_BAD_EXTENDED_DATA',
        `FSEQ extended data "${e.code}" claims bytes ${e.offset}–${e.offset + e.length}, outside the extended-data area ${tailStart}–${expected} after the channel data`,
        { details: { code: e.code, offset: e.offset, length: e.length, areaStart: tailStart, areaEnd: expected } },
      );
    }
  }
  return null;
}
