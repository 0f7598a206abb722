// The type policy as the hooks apply it: a violation becomes a clear 4xx naming the rule.
import type { Kind } from '../src/config/index.js';
import { AppError, badRequest } from '../src/errors.js';
import { classifyDeclared, InvalidFilename, policyRules, PolicyViolation, sanitizeFilename } from '../src/policy/type-policy.js';
import type { HookDeps } from './deps.js';

export function declaredKind(deps: HookDeps, declared: { filename: string; mimeType: string | null; size: number | null }): Kind {
  try {
    return classifyDeclared(declared, {
      allowedKinds: deps.config.allowedKinds,
      maxUploadSize: deps.config.maxUploadSize,
      rules: policyRules(deps.config.kindMaxSizes),
    }).kind;
  } catch (error) {
    if (error instanceof PolicyViolation) {
      throw new AppError(error.code === 'FILE_TOO_LARGE' ? 413 : 415, error.code, error.message, error.details);
    }
    throw error;
  }
}

const FILENAME_KEYS = ['filename', 'name'];
const FILETYPE_KEYS = ['filetype', 'type', 'contentType'];
const MIME_PATTERN = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}(?:\s*;.{0,200})?$/i;

function firstValue(metadata: Record<string, string | null>, keys: string[]): string | null {
  for (const key of keys) {
    const value = metadata[key];
    if (value) return value;
  }
  return null;
}

/**
 * tus metadata values are base64, decoded leniently elsewhere (bad UTF-8 becomes U+FFFD). A
 * filename that is not UTF-8 is refused with a clear error instead of being stored mangled.
 */
function assertUtf8Filename(header: string | null): void {
  if (!header) return;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const pair of header.split(',')) {
    const [key, value] = pair.trim().split(' ');
    if (!key || !value || !FILENAME_KEYS.includes(key)) continue;
    try {
      decoder.decode(Buffer.from(value, 'base64'));
    } catch {
      throw badRequest('INVALID_FILENAME', `the "${key}" metadata value is not valid UTF-8`);
    }
  }
}

/** The name and type a client declares in Upload-Metadata, checked and made safe. */
export function declaredFile(
  metadata: Record<string, string | null>,
  rawHeader: string | null,
): { filename: string; mimeType: string | null } {
  assertUtf8Filename(rawHeader);
  let filename: string;
  try {
    filename = sanitizeFilename(firstValue(metadata, FILENAME_KEYS));
  } catch (error) {
    if (error instanceof InvalidFilename) throw badRequest('INVALID_FILENAME', error.message);
    throw error;
  }
  const mimeType = firstValue(metadata, FILETYPE_KEYS)?.trim() || null;
  if (mimeType && !MIME_PATTERN.test(mimeType)) {
    throw badRequest('INVALID_FILETYPE', 'the "filetype" metadata value is not a MIME type such as audio/mpeg');
  }
  return { filename, mimeType };
}
