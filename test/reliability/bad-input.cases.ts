// The hostile-input table: every request as a client on the internet might send it, and what the
// server SHOULD answer. The runner (bad-input.test.ts) sends each one over a raw TCP connection,
// byte for byte, so that malformed headers, lying lengths and stalled bodies arrive as written.
//
// request.path: '/files' (the endpoint), '{upload}' (a fresh upload made for the case, see
// request.upload), or any literal path. expect.code null: the answer has no JSON error to check
// (HEAD, a success). Even what Node's HTTP parser refuses is answered with a JSON error.
// The server runs with AUTH_MODE=none: requests say `Host: localhost` unless a case says otherwise.
import { createHash } from 'node:crypto';
import { buildFseqV2, buildPng, buildXmlBomb } from '../support/fixture-builders.js';
import { buildZipBomb } from './zip-bomb.js';

export interface BadRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Create a fresh upload for '{upload}' first (default: a 10-byte picture.png). */
  upload?: { length?: number | 'deferred'; filename?: string; sent?: Buffer };
  /** How the body travels: whole (default), chunked, or cut short and then closed or stalled. */
  delivery?: 'whole' | 'chunked' | { sendBytes: number; then: 'close' | 'stall' };
  /** Written as the request head instead of building one (header injection, giant headers). */
  rawHead?: Buffer;
}

export interface BadExpectation {
  /** 'closed': the connection ends without an answer (the client gave up, or the idle timeout). */
  status: number | 'closed';
  code: string | null;
  headers?: Record<string, string>;
  /** HEAD on the case's upload afterwards reports this offset. */
  offsetAfter?: number;
  /** The file created by the request reaches this final status (reason matched). */
  final?: { status: string; reason?: RegExp };
  /** Fields of GET /api/files/:id for the upload the request created. */
  record?: Record<string, unknown>;
  /** For 'closed' after a stall: the server cut the connection within this many ms. */
  closedWithinMs?: number;
}

export interface BadInputCase {
  name: string;
  request: BadRequest;
  expect: BadExpectation;
}

export const TUS = { 'Tus-Resumable': '1.0.0' };
const OCTET = { 'Content-Type': 'application/offset+octet-stream' };
const PATCH0 = { ...TUS, ...OCTET, 'Upload-Offset': '0' };
const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64');
const meta = (filename: string | Buffer, extra = '') => `filename ${b64(filename)}${extra}`;
const create = (filename: string | Buffer = 'picture.png', length = '10') => ({ ...TUS, 'Upload-Length': length, 'Upload-Metadata': meta(filename) });
const sha1 = (data: Buffer | string) => createHash('sha1').update(data).digest('base64');
const TEN = Buffer.from('0123456789');
const MISSING_ID = 'f'.repeat(32);

// Files whose bytes lie (checked once they are stored: the type policy only sees names).
const fseq = buildFseqV2({ channels: 64, frames: 40 });
const truncatedFseq = buildFseqV2({ channels: 64, frames: 40, lie: { truncateBy: 700 } });
const lyingFseq = buildFseqV2({ channels: 64, frames: 40, lie: { frameCount: 4_000_000 } });
const xmlBomb = Buffer.from(buildXmlBomb());
/** A zip of one "sequence.xml" entry: 255 KB that inflate to 256 MiB. */
export const zipBomb = buildZipBomb('sequence.xml', 256 * 1024 * 1024);
const withUpload = (filename: string, data: Buffer) => ({
  ...TUS,
  ...OCTET,
  'Upload-Length': String(data.length),
  'Upload-Metadata': meta(filename),
});

export const CASES: BadInputCase[] = [
  // ---- Tus-Resumable: required everywhere but OPTIONS, and only 1.0.0 -------------------------
  { name: 'POST without Tus-Resumable', request: { method: 'POST', path: '/files', headers: { 'Upload-Length': '10', 'Upload-Metadata': meta('a.png') } }, expect: { status: 412, code: 'TUS_RESUMABLE_REQUIRED', headers: { 'Tus-Version': '1.0.0' } } },
  { name: 'POST with Tus-Resumable 0.2.2', request: { method: 'POST', path: '/files', headers: { ...create(), 'Tus-Resumable': '0.2.2' } }, expect: { status: 412, code: 'TUS_VERSION_UNSUPPORTED', headers: { 'Tus-Version': '1.0.0' } } },
  { name: 'POST with an empty Tus-Resumable', request: { method: 'POST', path: '/files', headers: { ...create(), 'Tus-Resumable': '' } }, expect: { status: 412, code: 'TUS_VERSION_UNSUPPORTED', headers: { 'Tus-Version': '1.0.0' } } },
  { name: 'PATCH without Tus-Resumable', request: { method: 'PATCH', path: '{upload}', headers: { ...OCTET, 'Upload-Offset': '0' }, body: TEN }, expect: { status: 412, code: 'TUS_RESUMABLE_REQUIRED', headers: { 'Tus-Version': '1.0.0' }, offsetAfter: 0 } },
  { name: 'HEAD without Tus-Resumable', request: { method: 'HEAD', path: '{upload}' }, expect: { status: 412, code: null, headers: { 'Tus-Version': '1.0.0' } } },
  { name: 'DELETE without Tus-Resumable', request: { method: 'DELETE', path: '{upload}' }, expect: { status: 412, code: 'TUS_RESUMABLE_REQUIRED', offsetAfter: 0 } },
  { name: 'OPTIONS without Tus-Resumable (must be ignored)', request: { method: 'OPTIONS', path: '/files' }, expect: { status: 204, code: null, headers: { 'Tus-Version': '1.0.0' } } },
  { name: 'Tus-Resumable sent twice', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['Upload-Metadata', meta('a.png')]]) }, expect: { status: 412, code: 'TUS_VERSION_UNSUPPORTED' } },

  // ---- Upload-Length / Upload-Defer-Length ----------------------------------------------------
  { name: 'POST with neither Upload-Length nor Upload-Defer-Length', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Metadata': meta('a.png') } }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH' } },
  { name: 'Upload-Length negative', request: { method: 'POST', path: '/files', headers: create('a.png', '-1') }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH' } },
  { name: 'Upload-Length not a number', request: { method: 'POST', path: '/files', headers: create('a.png', 'ten') }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH' } },
  { name: 'Upload-Length fractional', request: { method: 'POST', path: '/files', headers: create('a.png', '1.5') }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH' } },
  { name: 'Upload-Length in exponent notation', request: { method: 'POST', path: '/files', headers: create('a.png', '1e3') }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH' } },
  { name: 'Upload-Length in hex', request: { method: 'POST', path: '/files', headers: create('a.png', '0x10') }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH' } },
  { name: 'Upload-Length beyond 2^53', request: { method: 'POST', path: '/files', headers: create('a.fseq', '99999999999999999999') }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH' } },
  { name: 'Upload-Length above MAX_UPLOAD_SIZE', request: { method: 'POST', path: '/files', headers: create('a.fseq', String(2 * 2 ** 40)) }, expect: { status: 413, code: 'FILE_TOO_LARGE' } },
  { name: 'Upload-Length above the kind limit (20 MB picture)', request: { method: 'POST', path: '/files', headers: create('a.png', '20000000') }, expect: { status: 413, code: 'FILE_TOO_LARGE' } },
  { name: 'both Upload-Length and Upload-Defer-Length', request: { method: 'POST', path: '/files', headers: { ...create(), 'Upload-Defer-Length': '1' } }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH' } },
  { name: 'Upload-Defer-Length 2', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Defer-Length': '2', 'Upload-Metadata': meta('a.png') } }, expect: { status: 400, code: 'INVALID_UPLOAD_DEFER_LENGTH' } },
  { name: 'PATCH changing a declared Upload-Length (lying length)', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Length': '999' }, body: TEN }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH', offsetAfter: 0 } },
  { name: 'PATCH declaring a negative deferred length', request: { method: 'PATCH', path: '{upload}', upload: { length: 'deferred' }, headers: { ...PATCH0, 'Upload-Length': '-3' }, body: '' }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH', offsetAfter: 0 } },
  { name: 'PATCH declaring a deferred length beyond 2^53', request: { method: 'PATCH', path: '{upload}', upload: { length: 'deferred' }, headers: { ...PATCH0, 'Upload-Length': '99999999999999999999' }, body: '' }, expect: { status: 400, code: 'INVALID_UPLOAD_LENGTH', offsetAfter: 0 } },

  // ---- Upload-Metadata and file names ----------------------------------------------------------
  { name: 'metadata value not base64', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Metadata': 'filename ***' } }, expect: { status: 400, code: 'INVALID_METADATA' } },
  { name: 'metadata value unpadded base64', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Metadata': 'filename YS5wbmc' } }, expect: { status: 400, code: 'INVALID_METADATA' } },
  { name: 'metadata pair with three parts', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Metadata': `${meta('a.png')} extra` } }, expect: { status: 400, code: 'INVALID_METADATA' } },
  { name: 'metadata key twice', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Metadata': `${meta('a.png')},${meta('b.png')}` } }, expect: { status: 400, code: 'INVALID_METADATA' } },
  { name: 'metadata with an empty pair', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Metadata': `,${meta('a.png')}` } }, expect: { status: 400, code: 'INVALID_METADATA' } },
  { name: 'metadata key not ASCII', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['Upload-Metadata', Buffer.from(`fïlename ${b64('a.png')}`, 'utf8')]]) }, expect: { status: 400, code: 'INVALID_METADATA' } },
  { name: 'metadata over 4 KiB', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Metadata': meta('a.png', `,notes ${b64('x'.repeat(5000))}`) } }, expect: { status: 400, code: 'METADATA_TOO_LARGE' } },
  { name: 'filename with NUL', request: { method: 'POST', path: '/files', headers: create('evil\0.png') }, expect: { status: 400, code: 'INVALID_FILENAME' } },
  { name: 'filename with CR LF', request: { method: 'POST', path: '/files', headers: create('evil\r\nSet-Cookie: x.png') }, expect: { status: 400, code: 'INVALID_FILENAME' } },
  { name: 'filename with other control characters', request: { method: 'POST', path: '/files', headers: create('bell\u0007\u001b[31m.png') }, expect: { status: 400, code: 'INVALID_FILENAME' } },
  { name: 'filename not UTF-8', request: { method: 'POST', path: '/files', headers: create(Buffer.concat([Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('.png')])) }, expect: { status: 400, code: 'INVALID_FILENAME' } },
  { name: 'filename with a bidi override (U+202E)', request: { method: 'POST', path: '/files', headers: create('invoice\u202Egnp.txt.png') }, expect: { status: 400, code: 'INVALID_FILENAME' } },
  { name: 'filename with a zero-width space', request: { method: 'POST', path: '/files', headers: create('pic\u200Bture.png') }, expect: { status: 400, code: 'INVALID_FILENAME' } },
  { name: 'admin analytics start in year 0', request: { method: 'GET', path: '/api/admin/analytics/uploads?start=0000-01-01' }, expect: { status: 400, code: 'INVALID_RANGE' } },
  { name: 'admin series with 0 buckets', request: { method: 'GET', path: '/api/admin/analytics/series?buckets=0' }, expect: { status: 400, code: 'VALIDATION_ERROR' } },
  { name: 'admin series with a million buckets', request: { method: 'GET', path: '/api/admin/analytics/series?buckets=1000000' }, expect: { status: 400, code: 'VALIDATION_ERROR' } },
  { name: 'admin series ending before it starts', request: { method: 'GET', path: '/api/admin/analytics/series?start=2026-02-01T00:00:00Z&end=2026-01-01T00:00:00Z' }, expect: { status: 400, code: 'INVALID_RANGE' } },
  { name: 'admin storage breakdown with a negative limit', request: { method: 'GET', path: '/api/admin/analytics/storage?limit=-1' }, expect: { status: 400, code: 'VALIDATION_ERROR' } },
  { name: 'admin quarantine with a limit that is no number', request: { method: 'GET', path: '/api/admin/analytics/quarantine?limit=ten' }, expect: { status: 400, code: 'VALIDATION_ERROR' } },
  { name: 'filename ../../../etc/passwd.png (kept as its last component)', request: { method: 'POST', path: '/files', headers: create('../../../etc/passwd.png') }, expect: { status: 201, code: null, record: { filename: 'passwd.png' } } },
  { name: 'filename ..\\..\\boot.png (backslashes)', request: { method: 'POST', path: '/files', headers: create('..\\..\\windows\\boot.png') }, expect: { status: 201, code: null, record: { filename: 'boot.png' } } },
  { name: 'filename of only dots and slashes', request: { method: 'POST', path: '/files', headers: create('../..//./') }, expect: { status: 415, code: 'TYPE_NOT_ALLOWED' } },
  { name: 'filename .exe', request: { method: 'POST', path: '/files', headers: create('setup.exe') }, expect: { status: 415, code: 'TYPE_NOT_ALLOWED' } },
  { name: 'filename .png.exe', request: { method: 'POST', path: '/files', headers: create('cat.png.exe') }, expect: { status: 415, code: 'TYPE_NOT_ALLOWED' } },
  { name: 'declared type contradicting the name', request: { method: 'POST', path: '/files', headers: { ...create(), 'Upload-Metadata': `${meta('a.png')},filetype ${b64('audio/mpeg')}` } }, expect: { status: 415, code: 'MIME_TYPE_MISMATCH' } },
  { name: 'declared type not a MIME type', request: { method: 'POST', path: '/files', headers: { ...create(), 'Upload-Metadata': `${meta('a.png')},filetype ${b64('<script>')}` } }, expect: { status: 400, code: 'INVALID_FILETYPE' } },
  { name: 'control character in a header value (raw 0x01)', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['Upload-Metadata', Buffer.from(`filename ${b64('a.png')}\u0001`)]]) }, expect: { status: 400, code: 'MALFORMED_REQUEST' } },
  { name: 'NUL byte in a header value', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0\0'], ['Upload-Length', '10']]) }, expect: { status: 400, code: 'MALFORMED_REQUEST' } },
  { name: '1 MB header', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['X-Padding', 'a'.repeat(1024 * 1024)]]) }, expect: { status: 431, code: 'REQUEST_HEADERS_TOO_LARGE' } },

  // ---- PATCH: content type, offsets, bodies ----------------------------------------------------
  { name: 'PATCH without Content-Type', request: { method: 'PATCH', path: '{upload}', headers: { ...TUS, 'Upload-Offset': '0' }, body: TEN }, expect: { status: 415, code: 'INVALID_CONTENT_TYPE', offsetAfter: 0 } },
  { name: 'PATCH with Content-Type application/octet-stream', request: { method: 'PATCH', path: '{upload}', headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/octet-stream' }, body: TEN }, expect: { status: 415, code: 'INVALID_CONTENT_TYPE', offsetAfter: 0 } },
  { name: 'PATCH without Upload-Offset', request: { method: 'PATCH', path: '{upload}', headers: { ...TUS, ...OCTET }, body: TEN }, expect: { status: 400, code: 'MISSING_UPLOAD_OFFSET', offsetAfter: 0 } },
  { name: 'Upload-Offset negative', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Offset': '-5' }, body: TEN }, expect: { status: 400, code: 'INVALID_UPLOAD_OFFSET', offsetAfter: 0 } },
  { name: 'Upload-Offset not a number', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Offset': 'zero' }, body: TEN }, expect: { status: 400, code: 'INVALID_UPLOAD_OFFSET', offsetAfter: 0 } },
  { name: 'Upload-Offset beyond 2^53', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Offset': '99999999999999999999' }, body: TEN }, expect: { status: 400, code: 'INVALID_UPLOAD_OFFSET', offsetAfter: 0 } },
  { name: 'Upload-Offset ahead of the upload', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Offset': '5' }, body: '01234' }, expect: { status: 409, code: 'OFFSET_MISMATCH', headers: { 'Upload-Offset': '0' }, offsetAfter: 0 } },
  { name: 'Upload-Offset behind the upload', request: { method: 'PATCH', path: '{upload}', upload: { sent: Buffer.from('0123') }, headers: PATCH0, body: TEN }, expect: { status: 409, code: 'OFFSET_MISMATCH', headers: { 'Upload-Offset': '4' }, offsetAfter: 4 } },
  { name: 'body longer than Upload-Length (Content-Length)', request: { method: 'PATCH', path: '{upload}', headers: PATCH0, body: Buffer.alloc(20, 7) }, expect: { status: 413, code: 'BODY_EXCEEDS_UPLOAD_LENGTH', offsetAfter: 0 } },
  { name: 'body longer than Upload-Length (chunked)', request: { method: 'PATCH', path: '{upload}', headers: PATCH0, body: Buffer.alloc(20, 7), delivery: 'chunked' }, expect: { status: 413, code: 'BODY_EXCEEDS_UPLOAD_LENGTH', offsetAfter: 0 } },
  { name: 'Content-Length beyond 2^64', request: { method: 'PATCH', path: '{upload}', rawHead: rawHead('PATCH', '{upload}', [['Tus-Resumable', '1.0.0'], ['Upload-Offset', '0'], ['Content-Type', 'application/offset+octet-stream'], ['Content-Length', '99999999999999999999999']]) }, expect: { status: 400, code: 'MALFORMED_REQUEST', offsetAfter: 0 } },
  { name: 'Content-Length and Transfer-Encoding both (smuggling)', request: { method: 'PATCH', path: '{upload}', rawHead: rawHead('PATCH', '{upload}', [['Tus-Resumable', '1.0.0'], ['Upload-Offset', '0'], ['Content-Type', 'application/offset+octet-stream'], ['Content-Length', '10'], ['Transfer-Encoding', 'chunked']]) }, expect: { status: 400, code: 'MALFORMED_REQUEST', offsetAfter: 0 } },
  { name: 'body shorter than Content-Length, then the client hangs up', request: { method: 'PATCH', path: '{upload}', headers: PATCH0, body: TEN, delivery: { sendBytes: 6, then: 'close' } }, expect: { status: 'closed', code: null, offsetAfter: 6 } },
  { name: 'stalled body (slowloris): cut after IDLE_TIMEOUT, bytes kept', request: { method: 'PATCH', path: '{upload}', headers: PATCH0, body: TEN, delivery: { sendBytes: 3, then: 'stall' } }, expect: { status: 'closed', code: null, offsetAfter: 3, closedWithinMs: 8_000 } },
  { name: 'stalled request head (slowloris)', request: { method: 'POST', path: '/files', rawHead: Buffer.from('POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Le'), delivery: { sendBytes: 0, then: 'stall' } }, expect: { status: 'closed', code: null, closedWithinMs: 8_000 } },
  { name: 'PATCH on a finished upload', request: { method: 'PATCH', path: '{upload}', upload: { length: 4, sent: Buffer.from('abcd') }, headers: { ...PATCH0, 'Upload-Offset': '4' }, body: 'more' }, expect: { status: 409, code: 'UPLOAD_COMPLETE', headers: { 'Upload-Offset': '4' } } },

  // ---- Checksums ---------------------------------------------------------------------------------
  { name: 'Upload-Checksum with an unsupported algorithm', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': 'crc64 AAAAAAAAAAA=' }, body: TEN }, expect: { status: 400, code: 'CHECKSUM_ALGORITHM_UNSUPPORTED', offsetAfter: 0 } },
  { name: 'Upload-Checksum without a digest', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': 'sha1' }, body: TEN }, expect: { status: 400, code: 'INVALID_CHECKSUM', offsetAfter: 0 } },
  // A value that cannot be a digest of the named algorithm matches no body: a mismatch (460).
  { name: 'Upload-Checksum digest of the wrong length', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': 'sha1 AAAA' }, body: TEN }, expect: { status: 460, code: 'CHECKSUM_MISMATCH', offsetAfter: 0 } },
  { name: 'Upload-Checksum that does not match the body', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': `sha1 ${sha1('9876543210')}` }, body: TEN }, expect: { status: 460, code: 'CHECKSUM_MISMATCH', offsetAfter: 0 } },
  { name: 'Upload-Checksum that matches (control)', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': `sha1 ${sha1(TEN)}` }, body: TEN }, expect: { status: 204, code: null, headers: { 'Upload-Offset': '10' } } },

  // ---- Paths, ids, methods, concatenation -----------------------------------------------------
  { name: 'PATCH to an upload that does not exist', request: { method: 'PATCH', path: `/files/${MISSING_ID}`, headers: PATCH0, body: TEN }, expect: { status: 404, code: 'NOT_FOUND' } },
  { name: 'HEAD of an upload that does not exist', request: { method: 'HEAD', path: `/files/${MISSING_ID}`, headers: TUS }, expect: { status: 404, code: null } },
  { name: 'DELETE of an upload that does not exist', request: { method: 'DELETE', path: `/files/${MISSING_ID}`, headers: TUS }, expect: { status: 404, code: 'NOT_FOUND' } },
  { name: 'upload id with ../ (encoded)', request: { method: 'PATCH', path: '/files/..%2F..%2Fetc%2Fpasswd', headers: PATCH0, body: TEN }, expect: { status: 400, code: 'INVALID_UPLOAD_URL' } },
  { name: 'upload id with a NUL (encoded)', request: { method: 'HEAD', path: '/files/abc%00def', headers: TUS }, expect: { status: 400, code: null } },
  { name: 'POST to an upload URL', request: { method: 'POST', path: '{upload}', headers: create() }, expect: { status: 405, code: 'METHOD_NOT_ALLOWED' } },
  { name: 'Upload-Concat final with no URLs', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Concat': 'final;', 'Upload-Metadata': meta('a.png') } }, expect: { status: 400, code: 'INVALID_UPLOAD_CONCAT' } },
  { name: 'Upload-Concat final with foreign URLs', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Concat': 'final;https://evil.example/files/1 /etc/passwd', 'Upload-Metadata': meta('a.png') } }, expect: { status: 400, code: 'INVALID_UPLOAD_CONCAT' } },
  { name: 'Upload-Concat of an unknown kind', request: { method: 'POST', path: '/files', headers: { ...create(), 'Upload-Concat': 'sideways' } }, expect: { status: 400, code: 'INVALID_UPLOAD_CONCAT' } },

  // ---- Bytes that lie about what they are (caught once stored) ---------------------------------
  { name: 'valid PNG (control)', request: { method: 'POST', path: '/files', headers: withUpload('ok.png', buildPng()), body: buildPng() }, expect: { status: 201, code: null, final: { status: 'ready' } } },
  { name: 'valid FSEQ (control)', request: { method: 'POST', path: '/files', headers: withUpload('ok.fseq', fseq), body: fseq }, expect: { status: 201, code: null, final: { status: 'ready' } } },
  { name: 'truncated FSEQ', request: { method: 'POST', path: '/files', headers: withUpload('short.fseq', truncatedFseq), body: truncatedFseq }, expect: { status: 201, code: null, final: { status: 'rejected', reason: /short|truncat|size|bytes/i } } },
  { name: 'FSEQ whose header lies about its frames', request: { method: 'POST', path: '/files', headers: withUpload('lying.fseq', lyingFseq), body: lyingFseq }, expect: { status: 201, code: null, final: { status: 'rejected', reason: /frame|short|truncat|size|bytes/i } } },
  { name: 'PNG named .fseq', request: { method: 'POST', path: '/files', headers: withUpload('show.fseq', buildPng()), body: buildPng() }, expect: { status: 201, code: null, final: { status: 'rejected', reason: /PNG/ } } },
  { name: 'XML entity bomb named .xsq', request: { method: 'POST', path: '/files', headers: withUpload('laughs.xsq', xmlBomb), body: xmlBomb }, expect: { status: 201, code: null, final: { status: 'rejected', reason: /DOCTYPE/ } } },
  { name: 'zip bomb named .xsq (rejected by its magic bytes, never inflated)', request: { method: 'POST', path: '/files', headers: withUpload('sequence.xsq', zipBomb), body: zipBomb }, expect: { status: 201, code: null, final: { status: 'rejected', reason: /ZIP/ } } },

  // ---- Hosts, origins and errors from below the routes (issue #18) ------------------------------
  { name: 'Host with quotes and angle brackets (would become Location)', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['Upload-Metadata', meta('a.png')]], 'a"b<c>') }, expect: { status: 400, code: 'INVALID_HOST' } },
  { name: 'Host with a path and userinfo', request: { method: 'GET', path: '/api/files', rawHead: rawHead('GET', '/api/files', [], 'user@evil.example/x') }, expect: { status: 400, code: 'INVALID_HOST' } },
  { name: 'Host with a port beyond 65535', request: { method: 'GET', path: '/api/files', rawHead: rawHead('GET', '/api/files', [], 'localhost:99999') }, expect: { status: 400, code: 'INVALID_HOST' } },
  { name: 'no Host header (HTTP/1.1)', request: { method: 'GET', path: '/api/files', rawHead: Buffer.from('GET /api/files HTTP/1.1\r\nConnection: close\r\n\r\n') }, expect: { status: 400, code: 'INVALID_HOST' } },
  { name: 'foreign Host without auth (DNS rebinding)', request: { method: 'GET', path: '/api/files', rawHead: rawHead('GET', '/api/files', [], 'evil.example') }, expect: { status: 421, code: 'HOST_NOT_ALLOWED' } },
  { name: 'foreign Host without auth on the tus endpoint', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['Upload-Metadata', meta('a.png')]], 'evil.example:1080') }, expect: { status: 421, code: 'HOST_NOT_ALLOWED' } },
  { name: 'creation from a foreign Origin without auth', request: { method: 'POST', path: '/files', headers: { ...create(), Origin: 'https://evil.example' } }, expect: { status: 403, code: 'ORIGIN_NOT_ALLOWED' } },
  { name: 'path segment over maxParamLength (414, not echoed)', request: { method: 'DELETE', path: `/api/files/${'x'.repeat(300)}` }, expect: { status: 414, code: 'URI_TOO_LONG' } },
  { name: 'request target over 8 KiB', request: { method: 'GET', path: `/api/files?status=${'x'.repeat(9000)}` }, expect: { status: 414, code: 'URI_TOO_LONG' } },
  { name: 'path that is not valid percent-encoding', request: { method: 'GET', path: '/api/files/%E0%A4%A' }, expect: { status: 400, code: 'INVALID_URL' } },
  { name: 'unknown route (404 as JSON)', request: { method: 'GET', path: '/no/such/route' }, expect: { status: 404, code: 'ROUTE_NOT_FOUND' } },
  { name: 'two different Content-Length headers', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['Content-Length', '10'], ['Content-Length', '5']]) }, expect: { status: 400, code: 'MALFORMED_REQUEST' } },
  { name: 'method with characters HTTP does not allow', request: { method: 'G@T', path: '/files', rawHead: rawHead('G@T', '/files', []) }, expect: { status: 400, code: 'MALFORMED_REQUEST' } },
  { name: 'request line with a space in the target', request: { method: 'GET', path: '/files', rawHead: rawHead('GET', '/fi les', []) }, expect: { status: 400, code: 'MALFORMED_REQUEST' } },

  // ---- One id per request, decided once; bounded amplification (issue #18) -----------------------
  { name: 'query string on an upload URL', request: { method: 'PATCH', path: '{upload}', rawHead: rawHead('PATCH', '{upload}?x=1', [['Tus-Resumable', '1.0.0'], ['Content-Type', 'application/offset+octet-stream'], ['Upload-Offset', '0'], ['Content-Length', '0']]) }, expect: { status: 400, code: 'INVALID_UPLOAD_URL' } },
  { name: 'upload URL smuggled into the query of the collection', request: { method: 'PATCH', path: '{upload}', rawHead: rawHead('PATCH', '/files?{upload}', [['Tus-Resumable', '1.0.0'], ['Content-Type', 'application/offset+octet-stream'], ['Upload-Offset', '0'], ['Content-Length', '0']]) }, expect: { status: 400, code: 'INVALID_UPLOAD_URL' } },
  { name: 'upload URL with a ; parameter', request: { method: 'DELETE', path: '{upload}', rawHead: rawHead('DELETE', '{upload};v=1', [['Tus-Resumable', '1.0.0']]) }, expect: { status: 400, code: 'INVALID_UPLOAD_URL' } },
  { name: 'upload URL with an encoded slash', request: { method: 'DELETE', path: '{upload}', rawHead: rawHead('DELETE', '{upload}%2F', [['Tus-Resumable', '1.0.0']]) }, expect: { status: 400, code: 'INVALID_UPLOAD_URL' } },
  { name: 'X-HTTP-Method-Override on a HEAD', request: { method: 'HEAD', path: '{upload}', headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } }, expect: { status: 400, code: null } },
  { name: 'X-HTTP-Method-Override naming GET', request: { method: 'POST', path: '{upload}', headers: { ...TUS, 'X-HTTP-Method-Override': 'GET' } }, expect: { status: 400, code: 'INVALID_METHOD_OVERRIDE' } },
  { name: 'HEAD on the collection', request: { method: 'HEAD', path: '/files', headers: TUS }, expect: { status: 405, code: null } },
  { name: 'final upload listing more partials than CONCAT_MAX_PARTS', request: { method: 'POST', path: '/files', headers: { ...TUS, 'Upload-Concat': `final;${Array.from({ length: 101 }, () => `/files/${MISSING_ID}`).join(' ')}` } }, expect: { status: 400, code: 'TOO_MANY_PARTIAL_UPLOADS' } },
  { name: 'creation of unknown length with a chunked body', request: { method: 'POST', path: '/files', headers: { ...TUS, ...OCTET, 'Upload-Defer-Length': '1', 'Upload-Metadata': meta('a.png') }, body: TEN, delivery: 'chunked' }, expect: { status: 411, code: 'LENGTH_REQUIRED' } },

  // ---- tus 1.0 conformance (issue #19) --------------------------------------------------------------
  { name: 'Upload-Checksum value that is not base64', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': 'sha1 !!!!' }, body: TEN }, expect: { status: 460, code: 'CHECKSUM_MISMATCH', offsetAfter: 0 } },
  { name: 'Upload-Checksum naming md5 with a sha1-sized digest', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': `md5 ${sha1(TEN)}` }, body: TEN }, expect: { status: 460, code: 'CHECKSUM_MISMATCH', offsetAfter: 0 } },
  { name: 'creation-with-upload whose body is text/plain', request: { method: 'POST', path: '/files', headers: { ...create(), 'Content-Type': 'text/plain' }, body: TEN }, expect: { status: 415, code: 'INVALID_CONTENT_TYPE' } },
  { name: 'creation-with-upload whose body has no Content-Type', request: { method: 'POST', path: '/files', headers: create(), body: TEN }, expect: { status: 415, code: 'INVALID_CONTENT_TYPE' } },
  { name: 'creation-with-upload whose body is application/octet-stream', request: { method: 'POST', path: '/files', headers: { ...create(), 'Content-Type': 'application/octet-stream' }, body: TEN }, expect: { status: 415, code: 'INVALID_CONTENT_TYPE' } },
  { name: 'DELETE of a finished upload', request: { method: 'DELETE', path: '{upload}', upload: { length: 4, sent: Buffer.from('abcd') }, headers: TUS }, expect: { status: 204, code: null } },
];

/** A request head written byte for byte (values may hold any bytes). */
export function rawHead(method: string, path: string, headers: Array<[string, string | Buffer]>, host = 'localhost'): Buffer {
  const parts: Buffer[] = [Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n`)];
  for (const [name, value] of headers) parts.push(Buffer.from(`${name}: `), Buffer.from(value), Buffer.from('\r\n'));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}
