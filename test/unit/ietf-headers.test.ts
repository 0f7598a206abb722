// The IETF draft's request headers per interop version, and the interim response writer.
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  completionHeader,
  declaredRepresentation,
  hasProgressInterims,
  IetfProblem,
  interopVersionOf,
  parseAppend,
  parseCreation,
  PROBLEM_TYPES,
  requestCompletes,
} from '../../src/tus/ietf/headers.js';
import { writeInterimResponse } from '../../src/tus/ietf/interim.js';

const problemOf = (f: () => unknown): IetfProblem => {
  try {
    f();
  } catch (error) {
    if (error instanceof IetfProblem) return error;
    throw error;
  }
  throw new Error('no problem');
};

describe('IETF draft headers', () => {
  it('knows interop versions 3 to 8 and nothing else', () => {
    for (const v of ['3', '4', '5', '6', '7', '8', ' 6 ']) expect(interopVersionOf({ 'upload-draft-interop-version': v })).toBe(Number(v));
    for (const v of ['2', '9', '03', 'x', '', undefined]) expect(interopVersionOf({ 'upload-draft-interop-version': v })).toBeNull();
  });

  it('sends progress 104s from interop 5 (draft -03) on, never before', () => {
    expect([3, 4, 5, 6, 7, 8].filter((v) => hasProgressInterims(v as 3 | 4 | 5 | 6 | 7 | 8))).toEqual([5, 6, 7, 8]);
  });

  it('reads completion per version: Upload-Incomplete (inverted) for 3, Upload-Complete after', () => {
    expect(requestCompletes(3, { 'upload-incomplete': '?1' })).toBe(false);
    expect(requestCompletes(3, { 'upload-incomplete': '?0' })).toBe(true);
    expect(requestCompletes(3, {})).toBe(true);
    expect(requestCompletes(3, { 'upload-complete': '?0' })).toBe(true);
    expect(requestCompletes(8, { 'upload-complete': '?1' })).toBe(true);
    expect(requestCompletes(8, {})).toBeUndefined();
    expect(problemOf(() => requestCompletes(8, { 'upload-complete': 'true' })).status).toBe(400);
    expect(completionHeader(3, true)).toEqual({ 'Upload-Incomplete': '?0' });
    expect(completionHeader(7, false)).toEqual({ 'Upload-Complete': '?0' });
  });

  it('derives the length of a creation and refuses inconsistent indications', () => {
    expect(parseCreation(8, { 'upload-complete': '?1', 'content-length': '5' })).toEqual({ complete: true, length: 5, contentLength: 5 });
    expect(parseCreation(8, { 'upload-complete': '?0', 'content-length': '5' }).length).toBeNull();
    expect(parseCreation(8, { 'upload-complete': '?0', 'upload-length': '9', 'content-length': '5' }).length).toBe(9);
    expect(problemOf(() => parseCreation(8, { 'upload-complete': '?1', 'upload-length': '9', 'content-length': '5' })).type).toBe(PROBLEM_TYPES.inconsistentLength);
    expect(problemOf(() => parseCreation(8, { 'upload-complete': '?0', 'upload-length': '4', 'content-length': '5' })).type).toBe(PROBLEM_TYPES.inconsistentLength);
    expect(problemOf(() => parseCreation(8, { 'content-length': '5' })).status).toBe(400);
  });

  it('requires application/partial-upload on appends from interop 6', () => {
    expect(problemOf(() => parseAppend(6, { 'upload-offset': '0', 'upload-complete': '?0' })).status).toBe(415);
    expect(parseAppend(5, { 'upload-offset': '3', 'upload-complete': '?0' })).toMatchObject({ offset: 3, complete: false });
    expect(parseAppend(8, { 'content-type': 'application/partial-upload', 'upload-offset': '3', 'upload-complete': '?1', 'content-length': '2' })).toMatchObject({ complete: true, contentLength: 2 });
    expect(problemOf(() => parseAppend(8, { 'content-type': 'application/partial-upload', 'upload-complete': '?1' })).status).toBe(400);
  });

  it('takes the file name from Content-Disposition (filename* first) and the type from Content-Type', () => {
    expect(declaredRepresentation({ 'content-disposition': `attachment; filename="a.fseq"; filename*=UTF-8''b%C3%A9.fseq`, 'content-type': 'Audio/MPEG; x=1' })).toEqual({ filename: 'bé.fseq', mimeType: 'audio/mpeg' });
    expect(declaredRepresentation({})).toEqual({ filename: null, mimeType: null });
    expect(problemOf(() => declaredRepresentation({ 'content-disposition': 'attachment; filename=' })).status).toBe(400);
  });
});

describe('writeInterimResponse', () => {
  it('sends a 104 with headers before the final response, which a client sees as information', async () => {
    const server = createServer((req, res) => {
      writeInterimResponse(res, 104, 'Upload Resumption Supported', { Location: 'http://x/files/1', 'Upload-Draft-Interop-Version': '8' });
      expect(() => writeInterimResponse(res, 104, 'x', { 'Bad\r\nName': 'v' })).toThrow();
      res.end('done');
      expect(writeInterimResponse(res, 104, 'Upload Resumption Supported', {})).toBe(false);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const seen: { statusCode: number; headers: IncomingHttpHeaders }[] = [];
    const body = await new Promise<string>((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', method: 'POST' }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('information', (info) => seen.push({ statusCode: info.statusCode, headers: info.headers }));
      req.on('error', reject);
      req.end();
    });
    server.close();
    expect(body).toBe('done');
    expect(seen).toEqual([{ statusCode: 104, headers: { location: 'http://x/files/1', 'upload-draft-interop-version': '8' } }]);
  });
});
