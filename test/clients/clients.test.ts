// The clients people use, over real HTTP against the real server (AUTH_MODE=jwt, real PostgreSQL,
// disk storage): tus-js-client in Node, Debian's python3-tuspy and the README's curl script. Each
// upload is interrupted in the middle and resumed from the server's offset, and each ends
// byte-identical: the record's SHA-256 and the downloaded content match the local file.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { bearer, jwtEnv, token } from '../support/auth.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT, serverEnv, startServer, type TestServer } from '../support/server.js';

const run = promisify(execFile);
const PYTHON = process.env.TUSPY_PYTHON ?? '/usr/bin/python3';
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('clients over real HTTP', () => {
  let db: TestDatabase;
  let server: TestServer;
  let workDir: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer(
      await serverEnv({ databaseUrl: db.url, storage: 'file', extra: jwtEnv({ ALLOWED_KINDS: 'fseq,xsq,audio,video,image' }) }),
    );
    workDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-clients-'));
  });

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** Ready, with the local file's SHA-256, and the same bytes when downloaded. */
  async function expectByteIdentical(id: string, owner: string, data: Buffer) {
    const headers = await bearer(owner);
    const record = await waitForFinal(server.url, id, { headers, timeoutMs: 60_000 });
    expect(record.status).toBe('ready');
    expect(record.size).toBe(data.length);
    expect(record.sha256).toBe(sha256(data));
    const response = await fetch(`${server.url}/api/files/${id}/content`, { headers });
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true);
    return record;
  }

  it('tus-js-client (Node): aborted after 40 %, resumed by a new Upload from the stored URL', async () => {
    const owner = 'node-client';
    const headers = await bearer(owner);
    // A 6 MiB WAV (a real audio kind, so the pipeline reads its metadata too).
    const data = Buffer.concat([wavHeader(6 * 2 ** 20), randomBytes(6 * 2 ** 20)]);
    const file = path.join(workDir, 'node-show.wav');
    await writeFile(file, data);
    const chunkSize = 512 * 1024;
    const common = {
      endpoint: `${server.url}/files`,
      chunkSize,
      headers,
      retryDelays: [0, 500],
      metadata: { filename: 'node-show.wav', filetype: 'audio/wav' },
      storeFingerprintForResuming: false,
    };

    // First process: stops (abort) once 40 % is acknowledged.
    const first = await new Promise<{ url: string; acknowledged: number }>((resolve, reject) => {
      let stopped = false;
      const upload: tus.Upload = new tus.Upload(createReadStream(file), {
        ...common,
        onChunkComplete: (_chunk, acknowledged, total) => {
          if (stopped || acknowledged < total * 0.4) return;
          stopped = true;
          void upload.abort().then(() => resolve({ url: upload.url!, acknowledged }), reject);
        },
        onSuccess: () => reject(new Error('the upload finished before it could be interrupted')),
        onError: reject,
      });
      upload.start();
    });
    expect(first.acknowledged).toBeGreaterThan(0);
    expect(first.acknowledged).toBeLessThan(data.length);

    // The server says where to resume.
    const head = await fetch(first.url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } });
    expect(Number(head.headers.get('upload-offset'))).toBe(first.acknowledged);

    // Second process: a new Upload given the URL; it must not create a new upload nor restart from 0.
    const requests: Array<{ method: string; offset: string | undefined }> = [];
    await new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(createReadStream(file), {
        ...common,
        uploadUrl: first.url,
        onBeforeRequest: (request) => {
          requests.push({ method: request.getMethod(), offset: request.getHeader('Upload-Offset') });
        },
        onSuccess: () => resolve(),
        onError: reject,
      });
      upload.start();
    });
    expect(requests.filter((r) => r.method === 'POST')).toEqual([]);
    expect(requests[0]!.method).toBe('HEAD');
    const patches = requests.filter((r) => r.method === 'PATCH');
    expect(Number(patches[0]!.offset)).toBe(first.acknowledged);
    expect(patches.length).toBe(Math.ceil((data.length - first.acknowledged) / chunkSize));

    const record = await expectByteIdentical(idOf(first.url), owner, data);
    expect(record.kind).toBe('audio');
    expect(record.metadata).toMatchObject({ sampleRate: 44_100, channels: 2 });
  });

  it('python3-tuspy: stops after 3 chunks, a new uploader resumes from the stored URL', async () => {
    const owner = 'python-client';
    const fixture = path.join(ROOT, 'test/fixtures/fseq/v1.0_mf_nkaminski_BBK_Merry_Christmas_Baby.fseq');
    const data = await readFile(fixture);
    const chunkSize = 16 * 1024;
    const { stdout } = await run(
      PYTHON,
      [path.join(ROOT, 'test/clients/tuspy_upload.py'), `${server.url}/files`, fixture, String(chunkSize), '3', await token(owner)],
      { timeout: 60_000 },
    );
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as {
      url: string;
      stoppedAt: number;
      resumedFrom: number;
      offset: number;
      chunks: number;
    };
    expect(result.stoppedAt).toBe(3 * chunkSize);
    expect(result.resumedFrom).toBe(3 * chunkSize);
    expect(result.offset).toBe(data.length);
    expect(result.chunks).toBe(Math.ceil(data.length / chunkSize));

    const record = await expectByteIdentical(idOf(result.url), owner, data);
    expect(record.kind).toBe('fseq');
    expect(record.metadata).toMatchObject({ channelCount: 20, frameCount: 4744 });
  });

  it("the README's curl script: first half, HEAD for the offset, the rest, ready and byte-identical", async () => {
    const owner = 'curl-client';
    const fixture = path.join(ROOT, 'test/fixtures/audio/mm_id3v2.3.mp3');
    const data = await readFile(fixture);
    const { stdout } = await run('bash', [path.join(ROOT, 'scripts/smoke-test.sh'), server.url, fixture], {
      env: { ...process.env, TOKEN: await token(owner) },
      timeout: 120_000,
    });
    const half = Math.floor(data.length / 2);
    expect(stdout).toContain(`resume:  the server has ${half} bytes`);
    expect(stdout).toContain(`ready:   sha256 ${sha256(data)}`);
    const id = /\(id ([0-9a-f]{32})\)/.exec(stdout)?.[1];
    expect(id, stdout).toBeDefined();
    expect(stdout).toContain(`OK: mm_id3v2.3.mp3 uploaded in two parts, resumed at byte ${half}, byte-identical`);
    const record = await expectByteIdentical(id!, owner, data);
    expect(record.metadata).toMatchObject({ sampleRate: 44_100, channels: 2 });
  });

  it('the curl script fails loudly, with the server’s words, when the server refuses', async () => {
    const file = path.join(workDir, 'notes.exe');
    await writeFile(file, 'MZ not really');
    const failure = await run('bash', [path.join(ROOT, 'scripts/smoke-test.sh'), server.url, file], {
      env: { ...process.env, TOKEN: await token('curl-client') },
    }).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('FAIL: create answered 415');
    expect(failure?.stderr).toContain('TYPE_NOT_ALLOWED');
  });
});

function idOf(url: string): string {
  return new URL(url).pathname.split('/').pop()!;
}

/** The 44-byte header of a 16-bit stereo 44.1 kHz PCM WAV with `dataSize` bytes of samples. */
function wavHeader(dataSize: number): Buffer {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'ascii');
  header.writeUInt32LE(36 + dataSize, 4);
  header.write('WAVE', 8, 'ascii');
  header.write('fmt ', 12, 'ascii');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(2, 22);
  header.writeUInt32LE(44_100, 24);
  header.writeUInt32LE(44_100 * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'ascii');
  header.writeUInt32LE(dataSize, 40);
  return header;
}
