// The clients the benchmark drives: tus-js-client (Node build, in this process) and curl (one
// child process per upload; chunked uploads reuse one connection through `--next`).
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tus from 'tus-js-client';

const execFileP = promisify(execFile);

export interface UploadResult {
  ms: number;
  url: string;
  /** performance.now() when the last response arrived. */
  endedAt: number;
}

function tusOptions(endpoint: string, chunkSize: number, extra: Partial<tus.UploadOptions> = {}): tus.UploadOptions {
  return {
    endpoint,
    chunkSize,
    retryDelays: [],
    metadata: { filename: 'bench.bin', filetype: 'application/octet-stream' },
    storeFingerprintForResuming: false,
    removeFingerprintOnSuccess: false,
    ...extra,
  };
}

async function runTus(input: tus.Upload['file'], options: tus.UploadOptions): Promise<UploadResult> {
  const started = performance.now();
  let upload!: tus.Upload;
  await new Promise<void>((resolve, reject) => {
    upload = new tus.Upload(input, { ...options, onSuccess: () => resolve(), onError: reject });
    upload.start();
  });
  const endedAt = performance.now();
  return { ms: endedAt - started, url: upload.url!, endedAt };
}

/** One file with tus-js-client: creation, then PATCHes of `chunkSize` (Infinity = one PATCH). */
export function tusUploadFile(endpoint: string, file: string, chunkSize = Number.POSITIVE_INFINITY): Promise<UploadResult> {
  return runTus(createReadStream(file), tusOptions(endpoint, chunkSize));
}

/** A buffer with tus-js-client, creation-with-upload (one POST carries all the bytes). */
export function tusUploadBuffer(endpoint: string, data: Buffer): Promise<UploadResult> {
  return runTus(data, tusOptions(endpoint, Number.POSITIVE_INFINITY, { uploadDataDuringCreation: true }));
}

export interface ManyResult {
  totalMs: number;
  latencies: number[];
  urls: string[];
  failures: number;
  /** The first few failures' messages. */
  errors: string[];
}

/** `count` uploads of the given buffers, `concurrency` at a time, creation-with-upload. */
export async function tusUploadMany(endpoint: string, buffers: Buffer[], concurrency: number): Promise<ManyResult> {
  const latencies: number[] = [];
  const urls: string[] = [];
  let failures = 0;
  const errors: string[] = [];
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= buffers.length) return;
      try {
        const result = await tusUploadBuffer(endpoint, buffers[i]!);
        latencies.push(result.ms);
        urls.push(result.url);
      } catch (error) {
        failures++;
        if (errors.length < 5) errors.push(String(error).slice(0, 500));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { totalMs: performance.now() - started, latencies, urls, failures, errors };
}

/** Cuts `file` into pieces of `chunkSize` once (curl sends each piece as one PATCH). */
export async function splitFile(file: string, chunkSize: number, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  let pieces = (await readdir(dir)).sort();
  if (pieces.length === 0) {
    await execFileP('split', ['-a', '4', '-d', '-b', String(chunkSize), file, path.join(dir, 'part')]);
    pieces = (await readdir(dir)).sort();
  }
  return pieces.map((p) => path.join(dir, p));
}

/**
 * curl: the creation POST (fetch), then `curl -X PATCH -T <piece>` for each piece in ONE curl
 * process (`--next`), so chunked uploads reuse the connection as tus-js-client does.
 */
export async function curlUpload(endpoint: string, size: number, pieces: string[], pieceSizes: number[]): Promise<UploadResult> {
  const started = performance.now();
  const created = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Length': String(size),
      'Upload-Metadata': `filename ${Buffer.from('bench.bin').toString('base64')}`,
    },
  });
  await created.arrayBuffer();
  const location = created.headers.get('location');
  if (created.status !== 201 || !location) throw new Error(`POST ${endpoint}: ${created.status}`);
  const url = new URL(location, endpoint).toString();
  const args: string[] = ['-sS'];
  let offset = 0;
  pieces.forEach((piece, i) => {
    if (i > 0) args.push('--next');
    args.push(
      '-f', '-o', '/dev/null', '-X', 'PATCH', '-T', piece,
      '-H', 'Tus-Resumable: 1.0.0',
      '-H', 'Content-Type: application/offset+octet-stream',
      '-H', `Upload-Offset: ${offset}`,
      '-H', 'Expect:',
      url,
    );
    offset += pieceSizes[i]!;
  });
  await new Promise<void>((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited with ${code}: ${stderr}`))));
  });
  const endedAt = performance.now();
  return { ms: endedAt - started, url, endedAt };
}

/**
 * One file straight to the bucket through the server's /api/s3 routes (AUTH_MODE=none), as
 * @uppy/aws-s3 in Companion mode does it: create, presign and PUT each part (a few at once), complete.
 */
export async function directUploadFile(api: string, file: string, size: number, partSize: number, concurrency = 4): Promise<UploadResult> {
  const started = performance.now();
  const json = async (response: Response) => {
    if (!response.ok) throw new Error(`${response.url}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const { key, uploadId } = (await json(await post(`${api}/s3/multipart`, { filename: 'bench.bin', type: 'application/octet-stream', size }))) as {
    key: string;
    uploadId: string;
  };
  const query = `?${new URLSearchParams({ key })}`;
  const count = Math.ceil(size / partSize);
  const parts: Array<{ PartNumber: number; ETag: string }> = [];
  let next = 1;
  const worker = async () => {
    while (next <= count) {
      const partNumber = next++;
      const { url } = (await json(await fetch(`${api}/s3/multipart/${encodeURIComponent(uploadId)}/${partNumber}${query}`))) as { url: string };
      const start = (partNumber - 1) * partSize;
      const chunks: Buffer[] = [];
      for await (const chunk of createReadStream(file, { start, end: Math.min(start + partSize, size) - 1 })) chunks.push(chunk as Buffer);
      const put = await fetch(url, { method: 'PUT', body: Buffer.concat(chunks) });
      if (!put.ok) throw new Error(`part ${partNumber}: ${put.status} ${await put.text()}`);
      parts.push({ PartNumber: partNumber, ETag: put.headers.get('etag')! });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const { fileId } = (await json(await post(`${api}/s3/multipart/${encodeURIComponent(uploadId)}/complete${query}`, { parts }))) as { fileId: string };
  const endedAt = performance.now();
  return { ms: endedAt - started, url: `${api}/files/${fileId}`, endedAt };
}
