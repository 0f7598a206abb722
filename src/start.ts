// Composition root: builds the parts a process needs for its ROLE and starts them; `stop()` takes
// them down in the reverse order, letting in-flight uploads save what they received.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { EVENTS } from '@tus/utils';
import { createAuthenticator } from './auth/authenticator.js';
import type { Config } from './config/index.js';
import { connect, type Database } from './db/client.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded.js';
import { migrateDatabase } from './db/migrate.js';
import { syncConfiguredEndpoint } from './db/webhooks.js';
import { tusInfoOf, uploadRecords } from './db/uploads.js';
import { buildApp, buildBaseApp } from './http/app.js';
import { databaseGaugeQueries } from './db/metrics-queries.js';
import { useDatabaseGauges } from './metrics.js';
import { toHttpError } from './http/errors.js';
import { AppError } from './errors.js';
import { toFileRecord } from './http/file-record.js';
import { findOwnedFile } from './db/files.js';
import type { Logger } from './logger.js';
import { configuredScanner } from './scan/configured.js';
import { createStorage } from './storage/index.js';
import { ArrivalDigests, withArrivalDigests } from './storage/digesting-store.js';
import { HashThreads } from './storage/hash-thread.js';
import { inlineFinisher } from '../tasks/steps/finish-inline.js';
import { summarizeFirstBytes } from '../tasks/steps/first-bytes.js';
import { UploadEvents } from './events/upload-events.js';
import { PostgresLocker } from './tus/pg-locker.js';
import { ownerOfReceiving } from './tus/request-context.js';
import { createTusEndpoint } from './tus/endpoint.js';
import { createTusServer } from './tus/server.js';
import { startWorker, type WorkerHandle } from './worker/runner.js';
import type { HookDeps } from '../hooks/deps.js';
import { configuredPreCreateHook } from './webhooks/pre-create.js';
import { uploadLifecycle } from '../hooks/lifecycle.js';
import { crontab, taskList } from '../tasks/registry.js';
import { ffmpegVersion, removeStaleFfmpegTemp } from '../tasks/previews/ffmpeg-decoder.js';
import { setUpDirectUploads } from './direct/setup.js';

export interface Running {
  /** Base URL of the HTTP server (for ROLE=worker, its probes and metrics). */
  url: string;
  app: FastifyInstance;
  database: Database;
  /** The threads hashing large uploads as they arrive (API roles; a handle for tests). */
  hashThreads?: HashThreads;
  stop(): Promise<void>;
}

/** The spool directory was made by a process of this host that is gone (killed, crashed). */
function leftByDeadProcess(name: string): boolean {
  const match = /^(.+)-(\d+)-[0-9a-f]{8}$/.exec(name);
  if (!match || match[1] !== os.hostname()) return false;
  const pid = Number(match[2]);
  // Our own pid: an earlier incarnation (a restarted container often gets the same pid).
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * A spool directory of this process under DATA_DIR/spool (checksummed request bodies wait there
 * for verification). Directories of processes of this host that are gone (a SIGKILL leaves its
 * half-received bodies behind) are removed, and any left more than a day ago (other hosts).
 */
async function createSpoolDirectory(dataDir: string): Promise<string> {
  const root = path.join(dataDir, 'spool');
  await mkdir(root, { recursive: true });
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const dir = path.join(root, entry.name);
    const info = await stat(dir).catch(() => null);
    if (info && (leftByDeadProcess(entry.name) || Date.now() - info.mtimeMs > 86_400_000)) {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const dir = path.join(root, `${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

export async function start(config: Config, logger: Logger): Promise<Running> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        logger.warn({ err: error }, 'error while shutting down');
      }
    }
  };

  try {
    let url = config.databaseUrl;
    if (!url) {
      const embedded: EmbeddedDatabase = await startEmbeddedPostgres(config.dataDir, logger);
      cleanups.push(() => embedded.stop());
      url = embedded.url;
    }
    const database = connect(url, { max: config.databasePoolSize, applicationName: `tusvault-${config.role}` });
    cleanups.push(() => database.close());
    await migrateDatabase(database.sql, url, logger);
    // The WEBHOOK_URL endpoint, where the outbox trigger sees it.
    await syncConfiguredEndpoint(database.db, config.webhook);

    const storage = await createStorage(config, { tusInfo: (id) => tusInfoOf(database.db, id) });
    await storage.ping().catch((error: unknown) =>
      logger.error({ err: error }, 'storage is not reachable at start; /readyz will report it until it is'),
    );

    const scanner = configuredScanner(config);
    if (!scanner) {
      logger.warn('no virus scanner configured (CLAMAV_HOST / CLAMAV_SOCKET): files get scan status "skipped"');
    } else if (config.role !== 'api') {
      // Not fatal, and start does not wait for it: scans retry with backoff (files stay
      // `processing`) until clamd answers.
      void scanner.ping().then(
        () => logger.info('virus scanner (clamd) is reachable'),
        (error: unknown) => logger.error({ err: error }, 'clamd is not reachable at start; scans will retry until it is'),
      );
    }
    if (config.role !== 'api') {
      // Not fatal: without ffmpeg, AAC / ALAC audio gets no waveform and its record says why.
      if (!config.ffmpegPath) logger.info('FFMPEG_PATH=off: AAC / ALAC audio gets no waveform preview');
      else {
        void ffmpegVersion(config.ffmpegPath).then((version) =>
          version
            ? logger.info({ ffmpeg: config.ffmpegPath, version }, 'ffmpeg is available for AAC / ALAC waveforms')
            : logger.warn({ ffmpeg: config.ffmpegPath }, 'ffmpeg cannot be run (FFMPEG_PATH): AAC / ALAC audio gets no waveform preview'),
        );
      }
      // Temporary MP4 copies a killed worker left behind (an hour old: never a running decode's).
      void removeStaleFfmpegTemp().then(
        (removed) => removed.length > 0 && logger.info({ removed }, 'removed stale ffmpeg temporary directories'),
        (error: unknown) => logger.warn({ err: error }, 'could not remove stale ffmpeg temporary directories'),
      );
    }
    if (config.auth.mode === 'none') {
      logger.warn('AUTH_MODE=none: every request acts as the single local owner; use AUTH_MODE=jwt in production');
    }

    let worker: WorkerHandle | null = null;
    if (config.role !== 'api') {
      const tasks = taskList({ db: database.db, sql: database.sql, storage, config, logger, scanner });
      worker = await startWorker(
        { sql: database.sql, logger },
        { connectionString: url, concurrency: config.workerConcurrency, taskList: tasks, crontab: crontab(config.lifecycleSchedule) },
      );
      cleanups.push(() => worker!.stop());
    }

    useDatabaseGauges(databaseGaugeQueries(database.db));

    let app: FastifyInstance;
    let hashThreads: HashThreads | undefined;
    if (config.role === 'worker') {
      // A worker serves only its probes and metrics.
      app = await buildBaseApp({ config, logger, database, storage });
    } else {
      // Each in-flight PATCH pins one connection of the locker's pool while it holds its lock.
      const locker = new PostgresLocker(url, database.sql, logger);
      await locker.start();
      cleanups.push(() => locker.stop());
      const events = new UploadEvents(database.sql, logger);
      await events.start();
      cleanups.push(() => events.stop());

      // The running digests of the uploads this process receives: this process's own.
      hashThreads = new HashThreads({ logger });
      cleanups.push(() => hashThreads!.stop());
      const arrivals = new ArrivalDigests({ maxIdleMs: config.uploadExpiryMs, summarizeHead: summarizeFirstBytes, hashThreads });
      const hooks: HookDeps = {
        db: database.db,
        config,
        logger,
        records: uploadRecords(database.db, { quota: config.quota, maxAttempts: config.jobMaxAttempts }),
        storedOffset: async (uploadId) => (await storage.tusStore.getUpload(uploadId)).offset,
        takeArrivalDigest: (uploadId, size) => arrivals.take(uploadId, size),
        finishInline: inlineFinisher({
          db: database.db,
          storage,
          logger,
          options: { scanner: scanner !== null, scanRequired: config.scanRequired, maxAttempts: config.jobMaxAttempts },
        }),
        preCreate: configuredPreCreateHook(config, logger),
      };
      const spoolDirectory = await createSpoolDirectory(config.dataDir);
      cleanups.push(() => rm(spoolDirectory, { recursive: true, force: true }));
      const lifecycle = uploadLifecycle(hooks);
      const tus = createTusServer({
        config,
        spoolDirectory,
        // Bytes written through @tus/server are hashed on their way in (issue #23).
        storage: withArrivalDigests(storage, arrivals),
        locker,
        lifecycle,
        mapError: (error) => {
          const mapped = toHttpError(error);
          // An AppError is an answer we chose (a 503 with Retry-After, say): its cause is logged where it arose.
          if (mapped.status >= 500 && !(error instanceof AppError)) logger.error({ err: error }, 'tus request failed');
          return { status_code: mapped.status, body: JSON.stringify(mapped.body), headers: mapped.headers };
        },
      });
      const authenticator = createAuthenticator(config);
      const endpoint = createTusEndpoint({
        config,
        tus,
        lifecycle,
        authenticator,
        storage,
        publishProgress: (uploadId, ownerId, offset, length) => events.publishProgress(uploadId, ownerId, offset, length),
        mapError: toHttpError,
        fileRecord: async (uploadId, ownerId) => {
          const row = await findOwnedFile(database.db, uploadId, ownerId);
          return row ? toFileRecord(row) : null;
        },
      });
      // @tus/server passes the body stream here, not the request: the owner comes from the
      // bookkeeping of uploads receiving bytes in this process.
      tus.on(EVENTS.POST_RECEIVE, (_body, upload) => {
        const ownerId = ownerOfReceiving(upload.id);
        if (ownerId) events.publishProgress(upload.id, ownerId, upload.offset, upload.size ?? null);
      });
      app = await buildApp({
        config,
        logger,
        database,
        storage,
        endpoint,
        events,
        authenticator,
        direct: await setUpDirectUploads(config, hooks, storage, logger),
      });
      const server = app;
      cleanups.push(async () => {
        // Ask every upload request holding a lock to wrap up: @tus/server stops reading its body
        // and saves what arrived, and the client resumes from there (on another instance).
        for (const release of locker.held.values()) void Promise.resolve(release()).catch(() => {});
        await server.close();
      });
    }
    if (config.role === 'worker') {
      const server = app;
      cleanups.push(() => server.close());
    }
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const baseUrl = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    logger.info({ url: baseUrl, tusPath: config.tusPath, storage: config.storage, role: config.role }, 'server listening');

    return { url: baseUrl, app, database, hashThreads, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
