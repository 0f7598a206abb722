/**
 * Magic-byte sniffing: what is this file really, whatever its name or declared type says?
 *
 * Pure: give it the first bytes of the file (up to 64 KiB; more bytes only make the XML root and
 * MPEG frame checks surer). The answer names a format, its canonical MIME type and the upload
 * kinds that format may be accepted as. Formats we recognise but never accept as media (archives,
 * executables, PDF, HTML, SVG) get kinds ['other'] so the pipeline can tell the user exactly what
 * it found ("this is a ZIP archive, not an XSQ") instead of a vague "unknown type".
 */

export type Kind = 'fseq' | 'xsq' | 'audio' | 'video' | 'image' | 'other';

export interface SniffResult {
  format: string;
  mime: string;
  kinds: Kind[];
}

export type Sniffed = SniffResult | null;

const MIME: Readonly<Record<string, string>> = {
  fseq: 'application/x-fseq',
  eseq: 'application/x-eseq',
  xml: 'application/xml',
  png: 'image/png',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  bmp: 'image/bmp',
  tiff: 'image/tiff',
  avif: 'image/avif',
  heic: 'image/heic',
  mp3: 'audio/mpeg',
  aac: 'audio/aac',
  wav: 'audio/wav',
  aiff: 'audio/aiff',
  ogg: 'audio/ogg',
  opus: 'audio/ogg',
  flac: 'audio/flac',
  m4a: 'audio/mp4',
  ape: 'audio/x-ape',
  wavpack: 'audio/x-wavpack',
  dsf: 'audio/x-dsf',
  mpc: 'audio/x-musepack',
  mp4: 'video/mp4',
  m4v: 'video/x-m4v',
  '3gp': 'video/3gpp',
  mov: 'video/quicktime',
  webm: 'video/webm',
  mkv: 'video/x-matroska',
  avi: 'video/x-msvideo',
  asf: 'video/x-ms-asf',
  zip: 'application/zip',
  '7z': 'application/x-7z-compressed',
  rar: 'application/vnd.rar',
  gzip: 'application/gzip',
  bzip2: 'application/x-bzip2',
  xz: 'application/x-xz',
  zstd: 'application/zstd',
  pdf: 'application/pdf',
  elf: 'application/x-elf',
  exe: 'application/vnd.microsoft.portable-executable',
  macho: 'application/x-mach-binary',
  script: 'text/x-shellscript',
  html: 'text/html',
  svg: 'image/svg+xml',
};

/** Canonical MIME type of a format name returned by `sniff`; unknown → application/octet-stream. */
export function mimeForFormat(format: string): string {
  return MIME[format] ?? 'application/octet-stream';
}

function result(format: string, kinds: Kind[]): SniffResult {
  return { format, mime: mimeForFormat(format), kinds };
}

/**
 * Does the sniffed content back up the kind the client declared? `other` makes no claim and so
 * matches anything; every other kind needs a recognised format that may be that kind.
 */
export function declaredKindMatches(kind: Kind, sniffed: Sniffed): boolean {
  if (kind === 'other') return true;
  return sniffed !== null && sniffed.kinds.includes(kind);
}

function startsWith(head: Uint8Array, bytes: readonly number[], at = 0): boolean {
  if (head.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[at + i] !== bytes[i]) return false;
  return true;
}

function ascii(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}

// Compared char by char: sniff tries some thirty signatures on every small upload as it finishes.
function hasAscii(head: Uint8Array, s: string, at = 0): boolean {
  if (head.length < at + s.length) return false;
  for (let i = 0; i < s.length; i++) if (head[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

function readAscii(head: Uint8Array, at: number, length: number): string {
  if (head.length < at + length) return '';
  return String.fromCharCode(...head.subarray(at, at + length));
}

export function sniff(head: Uint8Array): Sniffed {
  if (head.length === 0) return null;

  // Sequences first: they are what this service exists for.
  if (hasAscii(head, 'PSEQ') || hasAscii(head, 'FSEQ')) return result('fseq', ['fseq']);
  if (hasAscii(head, 'ESEQ')) return result('eseq', ['fseq']);

  // Images.
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return result('png', ['image']);
  if (startsWith(head, [0xff, 0xd8, 0xff])) return result('jpeg', ['image']);
  if (hasAscii(head, 'GIF87a') || hasAscii(head, 'GIF89a')) return result('gif', ['image']);
  if (hasAscii(head, 'II*\0') || hasAscii(head, 'MM\0*')) return result('tiff', ['image']);
  if (isBmp(head)) return result('bmp', ['image']);

  // RIFF family: the form type at byte 8 says what is inside.
  if (hasAscii(head, 'RIFF') || hasAscii(head, 'RF64') || hasAscii(head, 'BW64')) {
    const form = readAscii(head, 8, 4);
    if (form === 'WAVE') return result('wav', ['audio']);
    if (form === 'WEBP' && hasAscii(head, 'RIFF')) return result('webp', ['image']);
    if (form === 'AVI ' && hasAscii(head, 'RIFF')) return result('avi', ['video']);
    return null;
  }
  if (hasAscii(head, 'FORM') && (readAscii(head, 8, 4) === 'AIFF' || readAscii(head, 8, 4) === 'AIFC')) return result('aiff', ['audio']);

  // Audio.
  if (hasAscii(head, 'ID3') && (head[3] ?? 0) >= 2 && (head[3] ?? 0) <= 4) return sniffAfterId3(head);
  if (hasAscii(head, 'fLaC')) return result('flac', ['audio']);
  if (hasAscii(head, 'OggS') && head[4] === 0) return sniffOgg(head);
  if (hasAscii(head, 'MAC ')) return result('ape', ['audio']);
  if (hasAscii(head, 'wvpk')) return result('wavpack', ['audio']);
  if (hasAscii(head, 'DSD ')) return result('dsf', ['audio']);
  if (hasAscii(head, 'MPCK') || hasAscii(head, 'MP+')) return result('mpc', ['audio']);

  // ISO base media (MP4, M4A, MOV, HEIF/AVIF): a box of type `ftyp` at offset 4.
  if (hasAscii(head, 'ftyp', 4)) {
    const sniffed = sniffFtyp(head);
    if (sniffed !== null) return sniffed;
  }
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) return sniffEbml(head);
  if (startsWith(head, [0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11])) return result('asf', ['video', 'audio']);

  // Archives, documents and executables: recognised so rejections can name them.
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || startsWith(head, [0x50, 0x4b, 0x05, 0x06]) || startsWith(head, [0x50, 0x4b, 0x07, 0x08])) {
    return result('zip', ['other']);
  }
  if (startsWith(head, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c])) return result('7z', ['other']);
  if (hasAscii(head, 'Rar!\x1a\x07')) return result('rar', ['other']);
  if (startsWith(head, [0x1f, 0x8b, 0x08])) return result('gzip', ['other']);
  if (hasAscii(head, 'BZh') && (head[3] ?? 0) >= 0x31 && (head[3] ?? 0) <= 0x39) return result('bzip2', ['other']);
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return result('xz', ['other']);
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return result('zstd', ['other']);
  if (hasAscii(head, '%PDF-')) return result('pdf', ['other']);
  if (startsWith(head, [0x7f, 0x45, 0x4c, 0x46])) return result('elf', ['other']);
  if (hasAscii(head, 'MZ')) return result('exe', ['other']);
  if (
    startsWith(head, [0xfe, 0xed, 0xfa, 0xce]) ||
    startsWith(head, [0xfe, 0xed, 0xfa, 0xcf]) ||
    startsWith(head, [0xce, 0xfa, 0xed, 0xfe]) ||
    startsWith(head, [0xcf, 0xfa, 0xed, 0xfe])
  ) {
    return result('macho', ['other']);
  }
  if (hasAscii(head, '#!')) return result('script', ['other']);

  // Bare MPEG audio frames / ADTS AAC: two sync bytes are weak evidence, so the header fields
  // must be valid and, when the buffer reaches that far, the next frame must follow.
  const mpeg = sniffMpegFrames(head, 0);
  if (mpeg !== null) return mpeg;

  return sniffXml(head);
}

function isBmp(head: Uint8Array): boolean {
  if (!hasAscii(head, 'BM') || head.length < 18) return false;
  // "BM" alone is too common; require a known DIB header size.
  const dib = (head[14] ?? 0) | ((head[15] ?? 0) << 8) | ((head[16] ?? 0) << 16) | ((head[17] ?? 0) << 24);
  return [12, 40, 52, 56, 64, 108, 124].includes(dib);
}

function sniffAfterId3(head: Uint8Array): SniffResult {
  // ID3v2 size is four 7-bit "syncsafe" bytes; a footer adds 10 more bytes.
  const size = (((head[6] ?? 0) & 0x7f) << 21) | (((head[7] ?? 0) & 0x7f) << 14) | (((head[8] ?? 0) & 0x7f) << 7) | ((head[9] ?? 0) & 0x7f);
  const footer = ((head[5] ?? 0) & 0x10) !== 0 ? 10 : 0;
  const after = 10 + size + footer;
  // Some encoders put an ID3 tag in front of FLAC or AAC streams.
  if (hasAscii(head, 'fLaC', after)) return result('flac', ['audio']);
  const inner = sniffMpegFrames(head, after);
  if (inner !== null && inner.format === 'aac') return inner;
  return result('mp3', ['audio']);
}

function sniffOgg(head: Uint8Array): SniffResult {
  // First page: 27-byte header, then `segments` lacing bytes, then the first packet, which
  // identifies the codec.
  const segments = head[26] ?? 0;
  const packet = 27 + segments;
  if (hasAscii(head, 'OpusHead', packet)) return result('opus', ['audio']);
  // Vorbis, FLAC-in-Ogg, Speex, and also Theora: Ogg is only ever accepted as audio here.
  return result('ogg', ['audio']);
}

const AUDIO_BRANDS = new Set(['M4A ', 'M4B ', 'M4P ', 'F4A ', 'F4B ']);
const VIDEO_ONLY_BRANDS = new Set(['M4V ', 'M4VH', 'M4VP', 'F4V ', 'F4P ']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);

function sniffFtyp(head: Uint8Array): Sniffed {
  const boxSize = ((head[0] ?? 0) << 24) | ((head[1] ?? 0) << 16) | ((head[2] ?? 0) << 8) | (head[3] ?? 0);
  // An ftyp box is at least 16 bytes: size, type, major brand, minor version.
  if (boxSize < 16) return null;
  const brand = readAscii(head, 8, 4);
  if (brand.length !== 4) return null;
  if (AUDIO_BRANDS.has(brand)) return result('m4a', ['audio']);
  if (brand === 'qt  ') return result('mov', ['video']);
  if (VIDEO_ONLY_BRANDS.has(brand)) return result('m4v', ['video']);
  if (brand === 'avif' || brand === 'avis') return result('avif', ['image']);
  if (HEIF_BRANDS.has(brand)) return result('heic', ['image']);
  if (brand.startsWith('3gp') || brand.startsWith('3g2')) return result('3gp', ['video', 'audio']);
  // isom, mp41, mp42, avc1, dash, iso2…: used for video and for plenty of .m4a files alike.
  return result('mp4', ['video', 'audio']);
}

function sniffEbml(head: Uint8Array): SniffResult {
  // The EBML header carries a DocType element (ID 0x4282); look for it near the start.
  const limit = Math.min(head.length - 3, 64);
  for (let i = 4; i < limit; i++) {
    if (head[i] === 0x42 && head[i + 1] === 0x82) {
      const sizeByte = head[i + 2] ?? 0;
      if ((sizeByte & 0x80) === 0) break;
      const docType = readAscii(head, i + 3, sizeByte & 0x7f);
      if (docType === 'matroska') return result('mkv', ['video', 'audio']);
      break;
    }
  }
  return result('webm', ['video', 'audio']);
}

// MPEG-1/2/2.5 audio tables, kbit/s, indexed by the 4-bit bitrate field.
const BITRATES_V1: Record<number, readonly number[]> = {
  1: [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  2: [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  3: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
};
const BITRATES_V2: Record<number, readonly number[]> = {
  1: [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  3: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const SAMPLE_RATES: Record<number, readonly number[]> = {
  3: [44100, 48000, 32000], // MPEG-1
  2: [22050, 24000, 16000], // MPEG-2
  0: [11025, 12000, 8000], // MPEG-2.5
};
const ADTS_SAMPLE_RATE_INDEXES = 13;

interface Frame {
  format: 'mp3' | 'aac';
  length: number;
  /** Fields every frame of one stream shares (version, layer, sample rate). */
  stream: number;
}

/** Parse one MPEG audio or ADTS frame header at `at`; null when any field is invalid/reserved. */
function frameAt(head: Uint8Array, at: number): Frame | null {
  if (head.length < at + 4) return null;
  const b0 = head[at] ?? 0;
  const b1 = head[at + 1] ?? 0;
  const b2 = head[at + 2] ?? 0;
  const b3 = head[at + 3] ?? 0;
  if (b0 !== 0xff || (b1 & 0xe0) !== 0xe0) return null;

  const layerBits = (b1 >> 1) & 3;
  if (layerBits === 0) {
    // Layer "00" under a 12-bit sync is ADTS (AAC), not MPEG audio.
    if ((b1 & 0xf0) !== 0xf0 || head.length < at + 7) return null;
    if (((b2 >> 2) & 0x0f) >= ADTS_SAMPLE_RATE_INDEXES) return null;
    const length = ((b3 & 0x03) << 11) | ((head[at + 4] ?? 0) << 3) | ((head[at + 5] ?? 0) >> 5);
    return length >= 7 ? { format: 'aac', length, stream: (b1 & 0x08) | ((b2 >> 2) & 0x0f) << 4 } : null;
  }
  const versionBits = (b1 >> 3) & 3;
  if (versionBits === 1) return null; // reserved
  const layer = 4 - layerBits; // 1, 2 or 3
  const bitrateIndex = b2 >> 4;
  // 0 is "free format" (no computable frame length, almost never used), 15 is invalid.
  if (bitrateIndex === 0 || bitrateIndex === 15) return null;
  const srIndex = (b2 >> 2) & 3;
  if (srIndex === 3) return null; // reserved
  if ((b3 & 3) === 2) return null; // reserved emphasis
  const sampleRate = SAMPLE_RATES[versionBits]?.[srIndex];
  const bitrate = (versionBits === 3 ? BITRATES_V1 : BITRATES_V2)[layer]?.[bitrateIndex];
  if (sampleRate === undefined || bitrate === undefined) return null;
  const padding = (b2 >> 1) & 1;
  let length: number;
  if (layer === 1) length = (Math.floor((12 * bitrate * 1000) / sampleRate) + padding) * 4;
  else if (layer === 3 && versionBits !== 3) length = Math.floor((72 * bitrate * 1000) / sampleRate) + padding;
  else length = Math.floor((144 * bitrate * 1000) / sampleRate) + padding;
  return length >= 4 ? { format: 'mp3', length, stream: (versionBits << 4) | (layerBits << 2) | srIndex } : null;
}

function sniffMpegFrames(head: Uint8Array, at: number): Sniffed {
  const first = frameAt(head, at);
  if (first === null) return null;
  // One header is ~1 in 4000 for random bytes; demanding a second frame of the same stream right
  // where the first one ends makes a false match negligible. Any real file has many frames within
  // the 64 KiB head (the largest frames are a few KiB).
  const second = frameAt(head, at + first.length);
  if (second === null || second.format !== first.format || second.stream !== first.stream) return null;
  return first.format === 'aac' ? result('aac', ['audio']) : result('mp3', ['audio']);
}

function isXmlSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isNameStart(c: number | undefined): boolean {
  if (c === undefined) return false;
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x3a || c >= 0x80;
}

function indexOfAscii(head: Uint8Array, needle: string, from: number): number {
  const bytes = ascii(needle);
  outer: for (let i = from; i <= head.length - bytes.length; i++) {
    for (let j = 0; j < bytes.length; j++) if (head[i + j] !== bytes[j]) continue outer;
    return i;
  }
  return -1;
}

function nameAt(head: Uint8Array, at: number): string {
  let end = at;
  while (end < head.length && end - at < 64) {
    const c = head[end] ?? 0;
    if (isXmlSpace(c) || c === 0x3e || c === 0x2f || c === 0x5b) break;
    end++;
  }
  return String.fromCharCode(...head.subarray(at, end)).toLowerCase();
}

function xmlByRoot(name: string): SniffResult {
  // HTML and SVG are markup we never accept as a sequence; SVG is deliberately not an "image"
  // because it can carry script.
  if (name === 'html') return result('html', ['other']);
  if (name === 'svg') return result('svg', ['other']);
  return result('xml', ['xsq']);
}

function sniffXml(head: Uint8Array): Sniffed {
  let i = startsWith(head, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (isXmlSpace(head[i])) i++;
  if (head[i] !== 0x3c) return null;
  const afterLt = head[i + 1];
  if (afterLt !== 0x3f && afterLt !== 0x21 && !isNameStart(afterLt)) return null;
  if (afterLt === 0x3f && !hasAscii(head, '<?xml', i)) return null;
  if (afterLt === 0x21 && !hasAscii(head, '<!--', i) && !hasAscii(head, '<!DOCTYPE', i) && !hasAscii(head, '<!doctype', i)) return null;

  // Walk the prolog (declaration, PIs, comments, doctype) to the root element's name, so HTML
  // and SVG can be named. Running out of buffer still counts as XML: it started like XML.
  for (let guard = 0; guard < 1000; guard++) {
    while (isXmlSpace(head[i])) i++;
    if (i >= head.length || head[i] !== 0x3c) return result('xml', ['xsq']);
    if (head[i + 1] === 0x3f) {
      const end = indexOfAscii(head, '?>', i + 2);
      if (end === -1) return result('xml', ['xsq']);
      i = end + 2;
    } else if (hasAscii(head, '<!--', i)) {
      const end = indexOfAscii(head, '-->', i + 4);
      if (end === -1) return result('xml', ['xsq']);
      i = end + 3;
    } else if (head[i + 1] === 0x21) {
      // <!DOCTYPE name ...>: the doctype names the root element.
      let j = i + 9;
      while (isXmlSpace(head[j])) j++;
      return xmlByRoot(nameAt(head, j));
    } else if (isNameStart(head[i + 1])) {
      return xmlByRoot(nameAt(head, i + 1));
    } else {
      return result('xml', ['xsq']);
    }
  }
  return result('xml', ['xsq']);
}
