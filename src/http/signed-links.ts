// Signed, short-lived download links: a browser can follow a link (<a href>, <audio src>) but
// cannot put a bearer token on it. The link names the file and an expiry and carries an HMAC of
// both, so it works for that file only, only until it expires, and cannot be altered.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MAX_LINK_TTL_SECONDS = 3600;

export interface LinkSigner {
  sign(fileId: string, expiresAt: number): string;
  verify(fileId: string, expires: string | undefined, signature: string | undefined, now?: number): boolean;
}

export function createLinkSigner(secret: string): LinkSigner {
  const mac = (fileId: string, expiresAt: number) =>
    createHmac('sha256', secret).update(`download\n${fileId}\n${expiresAt}`).digest('base64url');
  return {
    sign: mac,
    verify(fileId, expires, signature, now = Date.now()) {
      if (!expires || !signature || !/^\d{1,12}$/.test(expires)) return false;
      const expiresAt = Number(expires);
      if (expiresAt * 1000 < now || expiresAt * 1000 > now + MAX_LINK_TTL_SECONDS * 1000 + 60_000) return false;
      const expected = Buffer.from(mac(fileId, expiresAt));
      const given = Buffer.from(signature);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}
