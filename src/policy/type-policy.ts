// The type policy: which files are accepted, as what kind, and how large they may be. Checked at
// creation from what the client declares (name, type, length), before any byte is stored; the
// processing pipeline later checks the bytes themselves against the declared kind.
import type { Kind } from '../config/index.js';
import { formatBytes } from '../config/units.js';

export interface KindRule {
  kind: Exclude<Kind, 'other'>;
  extensions: string[];
  /** Accepted declared MIME types; `x/*` matches a whole family. */
  mimeTypes: string[];
  maxSize: number;
}

const MB = 1_000_000;

/** Defaults from the marketplace's rules: a full lossless song fits in the audio limit. */
export const DEFAULT_RULES: readonly KindRule[] = [
  {
    kind: 'fseq',
    extensions: ['.fseq'],
    mimeTypes: ['application/octet-stream', 'application/x-fseq', 'application/vnd.fpp.fseq'],
    maxSize: 500 * MB,
  },
  {
    kind: 'xsq',
    extensions: ['.xsq', '.xml'],
    mimeTypes: ['application/xml', 'text/xml', 'application/octet-stream', 'application/x-xsq', 'application/vnd.xlights.xsq'],
    maxSize: 100 * MB,
  },
  {
    kind: 'audio',
    extensions: ['.mp3', '.wav', '.ogg', '.flac', '.m4a', '.opus'],
    mimeTypes: ['audio/*', 'application/ogg', 'application/octet-stream', 'video/ogg'],
    maxSize: 200 * MB,
  },
  {
    kind: 'video',
    extensions: ['.mp4', '.webm', '.mov'],
    mimeTypes: ['video/*', 'application/octet-stream', 'application/mp4'],
    maxSize: 200 * MB,
  },
  {
    kind: 'image',
    extensions: ['.jpg', '.jpeg', '.png', '.gif', '.webp'],
    mimeTypes: ['image/*', 'application/octet-stream'],
    maxSize: 10 * MB,
  },
];

/** The default rules with the operator's per-kind size limits (KIND_MAX_SIZES) applied. */
export function policyRules(maxSizes: Partial<Record<Kind, number>> = {}): KindRule[] {
  return DEFAULT_RULES.map((rule) => ({ ...rule, maxSize: maxSizes[rule.kind] ?? rule.maxSize }));
}

export interface PolicyOptions {
  allowedKinds: readonly Kind[];
  /** Hard ceiling for any upload (MAX_UPLOAD_SIZE); also the limit for kind `other`. */
  maxUploadSize: number;
  rules?: readonly KindRule[];
}

export interface Classified {
  kind: Kind;
  maxSize: number;
}

export class PolicyViolation extends Error {
  constructor(
    readonly code: 'TYPE_NOT_ALLOWED' | 'MIME_TYPE_MISMATCH' | 'FILE_TOO_LARGE',
    message: string,
    readonly details: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'PolicyViolation';
  }
}

export function extensionOf(filename: string): string {
  const dot = filename.lastIndexOf('.');
  return dot > 0 ? filename.slice(dot).toLowerCase() : '';
}

function mimeMatches(declared: string, accepted: readonly string[]): boolean {
  const base = declared.split(';')[0]!.trim().toLowerCase();
  return accepted.some((a) => (a.endsWith('/*') ? base.startsWith(a.slice(0, -1)) : base === a));
}

/**
 * Decides the kind of a declared upload and checks it against the policy. Throws
 * PolicyViolation naming the rule that failed.
 */
export function classifyDeclared(
  declared: { filename: string; mimeType: string | null; size: number | null },
  options: PolicyOptions,
): Classified {
  const rules = options.rules ?? DEFAULT_RULES;
  const extension = extensionOf(declared.filename);
  const rule = rules.find((r) => r.extensions.includes(extension));
  const allowed = options.allowedKinds;

  let kind: Kind;
  let maxSize: number;
  if (rule && allowed.includes(rule.kind)) {
    kind = rule.kind;
    maxSize = Math.min(rule.maxSize, options.maxUploadSize);
    const mime = declared.mimeType?.trim();
    if (mime && !mimeMatches(mime, rule.mimeTypes)) {
      throw new PolicyViolation(
        'MIME_TYPE_MISMATCH',
        `a ${extension} file is declared as ${mime}; ${rule.kind} files may be ${rule.mimeTypes.join(', ')}`,
        { kind: rule.kind, filetype: mime, allowedTypes: rule.mimeTypes },
      );
    }
  } else if (allowed.includes('other')) {
    kind = 'other';
    maxSize = options.maxUploadSize;
  } else {
    const accepted = rules.filter((r) => allowed.includes(r.kind)).flatMap((r) => r.extensions);
    throw new PolicyViolation(
      'TYPE_NOT_ALLOWED',
      rule
        ? `${rule.kind} files are not accepted by this server`
        : `files of type "${extension || '(no extension)'}" are not accepted; allowed: ${accepted.join(' ')}`,
      { extension: extension || null, allowedExtensions: accepted },
    );
  }

  if (declared.size !== null && declared.size > maxSize) {
    throw new PolicyViolation(
      'FILE_TOO_LARGE',
      `${kind} files may be at most ${formatBytes(maxSize)}; this one is ${formatBytes(declared.size)}`,
      { kind, limit: maxSize, requested: declared.size },
    );
  }
  return { kind, maxSize };
}

// Control characters (C0, DEL, C1) and the Unicode line/paragraph separators: never in a name.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const MAX_NAME_BYTES = 255;

// Invisible format characters (Unicode category Cf) make a name display as something it is not:
// bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) reorder what follows
// (`invoice\u202Etxt.exe` shows as `invoiceexe.txt`), bidi marks (U+200E, U+200F, U+061C), zero-width
// space, word joiner, invisible operators and the BOM (U+200B, U+2060–U+2064, U+FEFF), soft hyphen,
// tag characters... all refused. Two exceptions, where real names need them: the zero-width
// non-joiner and joiner (U+200C, U+200D) between two non-ASCII letters, marks or emoji (Persian,
// Indic scripts, emoji sequences such as man-ZWJ-woman-ZWJ-girl), and the tag characters of an emoji
// flag sequence.
const FORMAT_CHAR = /\p{Cf}/u;
const JOINABLE = /^[\p{L}\p{M}\p{Extended_Pictographic}\p{Emoji_Modifier}]$/u;
const EMOJI_TAG_SEQUENCE = /(\p{Extended_Pictographic})[\u{E0020}-\u{E007E}]+\u{E007F}/gu;

const joinable = (char: string | undefined) => char !== undefined && char.codePointAt(0)! > 0x7f && JOINABLE.test(char);

/** The first invisible format character of a name that is not one of the allowed joiners, or null. */
export function invisibleCharacter(name: string): string | null {
  if (!FORMAT_CHAR.test(name)) return null;
  const chars = Array.from(name.replace(EMOJI_TAG_SEQUENCE, '$1'));
  for (const [i, char] of chars.entries()) {
    if (!FORMAT_CHAR.test(char)) continue;
    if ((char === '\u200c' || char === '\u200d') && joinable(chars[i - 1]) && joinable(chars[i + 1])) continue;
    return char;
  }
  return null;
}

export class InvalidFilename extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidFilename';
  }
}

/**
 * A filename as we store and show it: the last path component only (clients sometimes send a
 * full path; a name is never used to build a storage path anyway), no control characters, no
 * bidi overrides or zero-width characters (see invisibleCharacter), at most 255 UTF-8 bytes.
 * Those characters are an error rather than silently removed, so a client learns its name was
 * mangled.
 */
export function sanitizeFilename(raw: string | null | undefined): string {
  if (raw == null) return 'upload';
  if (UNSAFE_CHARS.test(raw)) {
    throw new InvalidFilename('the filename contains control characters (such as NUL, CR or LF)');
  }
  const invisible = invisibleCharacter(raw);
  if (invisible !== null) {
    const codePoint = `U+${invisible.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    throw new InvalidFilename(
      `the filename contains an invisible or text-direction character (${codePoint}), which can make a name look like another; rename the file`,
    );
  }
  const base = raw
    .split(/[/\\]/)
    .filter((part) => part !== '' && part !== '.' && part !== '..')
    .pop()
    ?.trim();
  if (!base) return 'upload';
  if (Buffer.byteLength(base, 'utf8') <= MAX_NAME_BYTES) return base;
  // Keep the extension, shorten the stem on a character boundary.
  const extension = extensionOf(base);
  let stem = base.slice(0, base.length - extension.length);
  while (Buffer.byteLength(stem + extension, 'utf8') > MAX_NAME_BYTES) stem = [...stem].slice(0, -1).join('');
  return stem + extension;
}
