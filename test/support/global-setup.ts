// Starts the real components every integration test shares: a moto S3 server and clamd (Debian's
// clamav-daemon, with a signature database generated at start: see clamd.ts). PostgreSQL is the one
// at DATABASE_URL (CI runs one at 127.0.0.1:5432), otherwise an embedded cluster started here.
// Anything that cannot start fails the run: no test is skipped for a missing component.
import type { TestProject } from 'vitest/node';
import { startClamd, type Clamd } from './clamd.js';
import { startMoto, type Moto } from './moto.js';
import { startTestPostgres, type TestPostgres } from './postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    databaseUrl: string;
    /** The shared clamd (StreamMaxLength 32M): TCP on clamdHost:clamdPort, or the Unix socket clamdSocket. */
    clamdHost: string;
    clamdPort: number;
    clamdSocket: string;
  }
}

let moto: Moto | undefined;
let postgres: TestPostgres | undefined;
let clamd: Clamd | undefined;

async function stopAll(): Promise<void> {
  await Promise.allSettled([moto?.stop(), postgres?.stop(), clamd?.destroy()]);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [motoResult, postgresResult, clamdResult] = await Promise.allSettled([
    startMoto(),
    startTestPostgres(),
    startClamd({ streamMaxLength: '32M' }),
  ]);
  if (motoResult.status === 'fulfilled') moto = motoResult.value;
  if (postgresResult.status === 'fulfilled') postgres = postgresResult.value;
  if (clamdResult.status === 'fulfilled') clamd = clamdResult.value;
  const failures = [motoResult, postgresResult, clamdResult].filter((r) => r.status === 'rejected');
  if (failures.length > 0) {
    await stopAll();
    throw new AggregateError(
      failures.map((f) => f.reason),
      `test components could not start:\n${failures.map((f) => String(f.reason)).join('\n')}`,
    );
  }
  project.provide('s3Endpoint', moto!.endpoint);
  project.provide('databaseUrl', postgres!.url);
  project.provide('clamdHost', clamd!.host);
  project.provide('clamdPort', clamd!.port);
  project.provide('clamdSocket', clamd!.socket);
  return stopAll;
}
