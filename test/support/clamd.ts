// A real clamd (Debian's clamav-daemon) for tests, with its own config and a signature database
// generated here: no signature download, nothing malicious committed.
//   - EICAR: an .ndb body signature for the EICAR test string, which is assembled from parts at
//     run time (it must never appear literally in the repository: scanners flag the file itself).
//   - clamav-testfiles: one .hdb line (md5:size:name) for Debian's /usr/share/clamav-testfiles/
//     clam.exe. clamd unpacks archives and packed executables before matching, so that one hash
//     detects all 44 samples (clam.zip, clam.7z, clam-upx.exe, clam.exe.mbox.base64, ...).
// clamd listens on a Unix socket in its own temporary directory and on a free TCP port on
// 127.0.0.1. As root it needs no `User` line (it then keeps running as root); Foreground keeps it
// a child process we can stop and start again.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClamdScanner } from '../../src/scan/clamd.js';
import { freePort, waitFor } from './ports.js';

export const CLAMAV_TESTFILES = '/usr/share/clamav-testfiles';
/** Names as clamd reports them (clamd appends `.UNOFFICIAL` to signatures from non-official databases). */
export const SIGNATURES = {
  eicar: 'Eicar-Test-Signature.UNOFFICIAL',
  clamTestFile: 'ClamAV-Test-File.UNOFFICIAL',
};

/** The 68-byte EICAR anti-virus test string, assembled at run time. */
export function eicar(): Buffer {
  const parts = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-', 'ANTIVIRUS-TEST-FILE!$H+H*'];
  return Buffer.from(parts.join(''), 'latin1');
}

export interface ClamdOptions {
  /** clamd's StreamMaxLength (INSTREAM limit), in clamd's syntax: `32M`, `1M`. */
  streamMaxLength?: string;
}

export interface Clamd {
  host: string;
  port: number;
  socket: string;
  dir: string;
  readonly running: boolean;
  /** Stops clamd (SIGTERM); connections are refused until start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and socket, resolving once it answers PING. */
  start(): Promise<void>;
  /** clamd's own log (with LogClean, one line per scanned stream). */
  log(): Promise<string>;
  /** Stops clamd and removes its directory. */
  destroy(): Promise<void>;
}

function clamdBinary(): string {
  for (const candidate of ['/usr/sbin/clamd', '/usr/local/sbin/clamd']) if (existsSync(candidate)) return candidate;
  return 'clamd';
}

async function writeDatabase(dbDir: string): Promise<void> {
  const sample = path.join(CLAMAV_TESTFILES, 'clam.exe');
  if (!existsSync(sample)) {
    throw new Error(`${sample} is missing: install Debian's clamav-testfiles (apt-get install clamav-daemon clamav-testfiles)`);
  }
  const exe = await readFile(sample);
  const name = (signature: string) => signature.replace(/\.UNOFFICIAL$/, '');
  await mkdir(dbDir, { recursive: true });
  await writeFile(path.join(dbDir, 'tusvault-test.hdb'), `${createHash('md5').update(exe).digest('hex')}:${exe.length}:${name(SIGNATURES.clamTestFile)}\n`);
  // Target 0 (any file type), offset * (anywhere in the file), the string's bytes in hex.
  await writeFile(path.join(dbDir, 'tusvault-test.ndb'), `${name(SIGNATURES.eicar)}:0:*:${eicar().toString('hex')}\n`);
}

export async function startClamd(options: ClamdOptions = {}): Promise<Clamd> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tv-clamd-'));
  const dbDir = path.join(dir, 'db');
  const tmpDir = path.join(dir, 'tmp');
  await mkdir(tmpDir);
  await writeDatabase(dbDir);
  const port = await freePort();
  const socket = path.join(dir, 'clamd.sock');
  const logFile = path.join(dir, 'clamd.log');
  const configFile = path.join(dir, 'clamd.conf');
  await writeFile(
    configFile,
    [
      'Foreground yes',
      `LocalSocket ${socket}`,
      'LocalSocketMode 660',
      'FixStaleSocket yes',
      'TCPAddr 127.0.0.1',
      `TCPSocket ${port}`,
      `DatabaseDirectory ${dbDir}`,
      `TemporaryDirectory ${tmpDir}`,
      `StreamMaxLength ${options.streamMaxLength ?? '32M'}`,
      'MaxThreads 4',
      'ReadTimeout 30',
      'CommandReadTimeout 10',
      'SelfCheck 0',
      'ConcurrentDatabaseReload no',
      'LogSyslog no',
      `LogFile ${logFile}`,
      'LogTime yes',
      'LogClean yes',
      '',
    ].join('\n'),
  );

  let child: ChildProcess | null = null;
  let output = '';

  async function launch(): Promise<void> {
    output = '';
    const proc = spawn(clamdBinary(), ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', (error) => reject(new Error(`clamd could not start (is clamav-daemon installed?): ${error.message}`)));
      proc.once('exit', (code, signal) => reject(new Error(`clamd exited with ${code ?? signal} during start:\n${output}`)));
    });
    failed.catch(() => {});
    const tcp = createClamdScanner({ host: '127.0.0.1', port, timeoutMs: 2000 });
    const local = createClamdScanner({ socket, timeoutMs: 2000 });
    try {
      await Promise.race([
        failed,
        waitFor(
          async () => {
            await tcp.ping();
            await local.ping();
            return true;
          },
          { timeoutMs: 60_000, intervalMs: 100, what: 'clamd to answer PING' },
        ),
      ]);
    } catch (error) {
      await stop();
      throw error;
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  await launch();
  return {
    host: '127.0.0.1',
    port,
    socket,
    dir,
    get running() {
      return child !== null;
    },
    stop,
    start: launch,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    destroy: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
