// The hostile-input table: every request as a client on the internet might send it, and what the
// server SHOULD answer. The runner (bad-input.test.ts) sends each one over a raw TCP connection,
// byte for byte, so that malformed headers, lying lengths and stalled bodies arrive as written.
//
// request.path: '/files' (the endpoint), '{upload}' (a fresh upload made for the case, see
// request.upload), or any literal path. expect.code null: the answer has no JSON error (HEAD, or
// Node's HTTP parser answering by itself).
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
  { name: 'OPTIONS without Tus-Resumable (must be ignored)', request: { method: 'OPTIONS', path: '/files' }, expect: { status: 200, code: null, headers: { 'Tus-Version': '1.0.0' } } },
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
  { name: 'filename ../../../etc/passwd.png (kept as its last component)', request: { method: 'POST', path: '/files', headers: create('../../../etc/passwd.png') }, expect: { status: 201, code: null, record: { filename: 'passwd.png' } } },
  { name: 'filename ..\\..\\boot.png (backslashes)', request: { method: 'POST', path: '/files', headers: create('..\\..\\windows\\boot.png') }, expect: { status: 201, code: null, record: { filename: 'boot.png' } } },
  { name: 'filename of only dots and slashes', request: { method: 'POST', path: '/files', headers: create('../..//./') }, expect: { status: 415, code: 'TYPE_NOT_ALLOWED' } },
  { name: 'filename .exe', request: { method: 'POST', path: '/files', headers: create('setup.exe') }, expect: { status: 415, code: 'TYPE_NOT_ALLOWED' } },
  { name: 'filename .png.exe', request: { method: 'POST', path: '/files', headers: create('cat.png.exe') }, expect: { status: 415, code: 'TYPE_NOT_ALLOWED' } },
  { name: 'declared type contradicting the name', request: { method: 'POST', path: '/files', headers: { ...create(), 'Upload-Metadata': `${meta('a.png')},filetype ${b64('audio/mpeg')}` } }, expect: { status: 415, code: 'MIME_TYPE_MISMATCH' } },
  { name: 'declared type not a MIME type', request: { method: 'POST', path: '/files', headers: { ...create(), 'Upload-Metadata': `${meta('a.png')},filetype ${b64('<script>')}` } }, expect: { status: 400, code: 'INVALID_FILETYPE' } },
  { name: 'control character in a header value (raw 0x01)', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['Upload-Metadata', Buffer.from(`filename ${b64('a.png')}\u0001`)]]) }, expect: { status: 400, code: null } },
  { name: 'NUL byte in a header value', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0\0'], ['Upload-Length', '10']]) }, expect: { status: 400, code: null } },
  { name: '1 MB header', request: { method: 'POST', path: '/files', rawHead: rawHead('POST', '/files', [['Tus-Resumable', '1.0.0'], ['Upload-Length', '10'], ['X-Padding', 'a'.repeat(1024 * 1024)]]) }, expect: { status: 431, code: null } },

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
  { name: 'Content-Length beyond 2^64', request: { method: 'PATCH', path: '{upload}', rawHead: rawHead('PATCH', '{upload}', [['Tus-Resumable', '1.0.0'], ['Upload-Offset', '0'], ['Content-Type', 'application/offset+octet-stream'], ['Content-Length', '99999999999999999999999']]) }, expect: { status: 400, code: null, offsetAfter: 0 } },
  { name: 'Content-Length and Transfer-Encoding both (smuggling)', request: { method: 'PATCH', path: '{upload}', rawHead: rawHead('PATCH', '{upload}', [['Tus-Resumable', '1.0.0'], ['Upload-Offset', '0'], ['Content-Type', 'application/offset+octet-stream'], ['Content-Length', '10'], ['Transfer-Encoding', 'chunked']]) }, expect: { status: 400, code: null, offsetAfter: 0 } },
  { name: 'body shorter than Content-Length, then the client hangs up', request: { method: 'PATCH', path: '{upload}', headers: PATCH0, body: TEN, delivery: { sendBytes: 6, then: 'close' } }, expect: { status: 'closed', code: null, offsetAfter: 6 } },
  { name: 'stalled body (slowloris): cut after IDLE_TIMEOUT, bytes kept', request: { method: 'PATCH', path: '{upload}', headers: PATCH0, body: TEN, delivery: { sendBytes: 3, then: 'stall' } }, expect: { status: 'closed', code: null, offsetAfter: 3, closedWithinMs: 8_000 } },
  { name: 'stalled request head (slowloris)', request: { method: 'POST', path: '/files', rawHead: Buffer.from('POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Le'), delivery: { sendBytes: 0, then: 'stall' } }, expect: { status: 'closed', code: null, closedWithinMs: 8_000 } },
  { name: 'PATCH on a finished upload', request: { method: 'PATCH', path: '{upload}', upload: { length: 4, sent: Buffer.from('abcd') }, headers: { ...PATCH0, 'Upload-Offset': '4' }, body: 'more' }, expect: { status: 409, code: 'UPLOAD_COMPLETE', headers: { 'Upload-Offset': '4' } } },

  // ---- Checksums ---------------------------------------------------------------------------------
  { name: 'Upload-Checksum with an unsupported algorithm', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': 'crc64 AAAAAAAAAAA=' }, body: TEN }, expect: { status: 400, code: 'CHECKSUM_ALGORITHM_UNSUPPORTED', offsetAfter: 0 } },
  { name: 'Upload-Checksum without a digest', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': 'sha1' }, body: TEN }, expect: { status: 400, code: 'INVALID_CHECKSUM', offsetAfter: 0 } },
  { name: 'Upload-Checksum digest of the wrong length', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': 'sha1 AAAA' }, body: TEN }, expect: { status: 400, code: 'INVALID_CHECKSUM', offsetAfter: 0 } },
  { name: 'Upload-Checksum that does not match the body', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': `sha1 ${sha1('9876543210')}` }, body: TEN }, expect: { status: 460, code: 'CHECKSUM_MISMATCH', offsetAfter: 0 } },
  { name: 'Upload-Checksum that matches (control)', request: { method: 'PATCH', path: '{upload}', headers: { ...PATCH0, 'Upload-Checksum': `sha1 ${sha1(TEN)}` }, body: TEN }, expect: { status: 204, code: null, headers: { 'Upload-Offset': '10' } } },

  // ---- Paths, ids, methods, concatenation -----------------------------------------------------
  { name: 'PATCH to an upload that does not exist', request: { method: 'PATCH', path: `/files/${MISSING_ID}`, headers: PATCH0, body: TEN }, expect: { status: 404, code: 'NOT_FOUND' } },
  { name: 'HEAD of an upload that does not exist', request: { method: 'HEAD', path: `/files/${MISSING_ID}`, headers: TUS }, expect: { status: 404, code: null } },
  { name: 'DELETE of an upload that does not exist', request: { method: 'DELETE', path: `/files/${MISSING_ID}`, headers: TUS }, expect: { status: 404, code: 'NOT_FOUND' } },
  { name: 'upload id with ../ (encoded)', request: { method: 'PATCH', path: '/files/..%2F..%2Fetc%2Fpasswd', headers: PATCH0, body: TEN }, expect: { status: 404, code: 'NOT_FOUND' } },
  { name: 'upload id with a NUL (encoded)', request: { method: 'HEAD', path: '/files/abc%00def', headers: TUS }, expect: { status: 404, code: null } },
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
];

/** A request head written byte for byte (values may hold any bytes). */
export function rawHead(method: string, path: string, headers: Array<[string, string | Buffer]>): Buffer {
  const parts: Buffer[] = [Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: bad-input.test\r\nConnection: close\r\n`)];
  for (const [name, value] of headers) parts.push(Buffer.from(`${name}: `), Buffer.from(value), Buffer.from('\r\n'));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}
