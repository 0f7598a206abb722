// The README's quick start as a user runs it: no DATABASE_URL (embedded PostgreSQL under
// DATA_DIR), disk storage, defaults. Also: a bad configuration stops the process with one line
// per problem, and SIGTERM shuts down cleanly.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitForFinal } from '../support/api.js';
import { ROOT, spawnServer } from '../support/server.js';
import { sha256, upload } from '../support/tus.js';

describe('quick start', () => {
  it('starts with an embedded PostgreSQL, takes an upload to ready, and stops on SIGTERM', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-quickstart-'));
    await chmod(dataDir, 0o755);
    const server = await spawnServer({ DATA_DIR: dataDir, HOST: '127.0.0.1' });
    try {
      expect(server.output()).toContain('embedded PostgreSQL started');
      const ready = await fetch(`${server.url}/readyz`);
      expect(ready.status).toBe(200);

      // Plain text is not an accepted kind by default: refused before any byte is stored.
      const refused = await upload(Buffer.from('just some notes'), { endpoint: `${server.url}/files`, filename: 'notes.txt' }).catch(
        (error: Error) => error,
      );
      expect(refused).toBeInstanceOf(Error);
      expect(String(refused)).toContain('415');
      expect(String(refused)).toContain('TYPE_NOT_ALLOWED');

      // A real FSEQ from the fixtures: the default policy accepts sequences.
      const fseq = await readFile(path.join(ROOT, 'test/fixtures/fseq/v1.0_novh_nkaminski_testseq.fseq'));
      const fseqId = await upload(fseq, { endpoint: `${server.url}/files`, filename: 'testseq.fseq' });
      const record = await waitForFinal(server.url, fseqId);
      expect(record.status).toBe('ready');
      expect(record.sha256).toBe(sha256(fseq));
      expect(record.kind).toBe('fseq');
    } finally {
      const code = await server.kill('SIGTERM');
      expect(code).toBe(0);
      expect(server.output()).toContain('"msg":"stopped"');
    }
  });

  it('refuses to start with a malformed configuration, listing every problem', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PORT: 'eighty', MAX_UPLOAD_SIZE: '12 parsecs', ROLE: 'everything' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(78);
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toBe('Invalid configuration:');
    expect(lines).toContain('  PORT="eighty": expected a whole number from 0 to 65535');
    expect(lines.some((l) => l.startsWith('  MAX_UPLOAD_SIZE="12 parsecs": expected a size'))).toBe(true);
    expect(lines.some((l) => l.startsWith('  ROLE="everything": expected one of all, api, worker'))).toBe(true);
  });
});
