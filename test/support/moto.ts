// A real S3 API for tests: moto_server from the machine's Python.
import { spawn, type ChildProcess } from 'node:child_process';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, waitFor } from './ports.js';

export interface Moto {
  endpoint: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startMoto(port?: number): Promise<Moto> {
  const chosen = port ?? (await freePort());
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(chosen)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`moto_server could not start: ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`moto_server exited with ${code}: ${stderr}`)));
  });
  const endpoint = `http://127.0.0.1:${chosen}`;
  await Promise.race([
    failed,
    waitFor(async () => (await fetch(`${endpoint}/moto-api/`).catch(() => null))?.ok, { timeoutMs: 30_000, what: 'moto_server' }),
  ]);
  failed.catch(() => {});
  return {
    endpoint,
    process: child,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

export async function createBucket(endpoint: string, name: string): Promise<void> {
  await s3Client(endpoint).send(new CreateBucketCommand({ Bucket: name }));
}
