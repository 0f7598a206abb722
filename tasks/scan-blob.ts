// scan_blob: the virus-scan verdict of one blob (content), computed once and reused by every
// upload of the same bytes. The stored bytes stream from disk or S3 straight into the scanner.
//   clean        → recorded;
//   infected     → the bytes move to quarantine/<key>, and the verdict, signature, new key and
//                  quarantine time are recorded in one update (the uploads become `infected`, with a
//                  SECURITY_ALERT audit entry, when the blob is finalized);
//   unscannable  → (e.g. larger than clamd's StreamMaxLength) status `error` with the reason, no
//                  retry: the file becomes ready, or failed under SCAN_REQUIRED;
//   scanner down or erroring, storage failing → retried with backoff while the files stay
//                  `processing`; after the last attempt status `error` and the files `failed`.
// Then, as extract_metadata does, finalize: the blob's uploads get their final status once both
// steps are done, exactly once.
import type { Readable } from 'node:stream';
import type { Task } from 'graphile-worker';
import { parsePayload } from '../src/db/jobs.js';
import { enqueuePreviewsIfClean } from '../src/db/previews.js';
import { abandonScan, findBlob, finalizeBlob, saveInfected, saveScan } from '../src/db/processing.js';
import type { BlobRow } from '../src/db/schema.js';
import type { Logger } from '../src/logger.js';
import { scanResults, type ScanResult, timed } from '../src/metrics.js';
import { UnscannableError, type Scanner, type ScanVerdict } from '../src/scan/scanner.js';
import { ObjectNotFoundError, QUARANTINE_PREFIX, type ObjectStorage } from '../src/storage/types.js';
import { errorMessage, isLastAttempt, stepOptions, type TaskDeps, observeFinal } from './deps.js';


const count = (result: ScanResult) => scanResults.inc({ result });

function quarantineKeyOf(key: string): string {
  return key.startsWith(QUARANTINE_PREFIX) ? key : QUARANTINE_PREFIX + key;
}

/**
 * Opens the blob's bytes where they are. An attempt that moved them to quarantine and then died
 * before recording it left them under the quarantine key: they are read from there.
 */
async function openBytes(storage: ObjectStorage, blob: BlobRow): Promise<{ key: string; stream: Readable }> {
  try {
    return { key: blob.storageKey, stream: await storage.read(blob.storageKey, undefined, blob.size) };
  } catch (error) {
    const quarantineKey = quarantineKeyOf(blob.storageKey);
    if (!(error instanceof ObjectNotFoundError) || quarantineKey === blob.storageKey) throw error;
    return { key: quarantineKey, stream: await storage.read(quarantineKey, undefined, blob.size) };
  }
}

/** Moves the bytes to quarantine; a move an earlier attempt already made counts as done. */
async function quarantine(storage: ObjectStorage, from: string, to: string): Promise<void> {
  if (from === to) return;
  try {
    await storage.move(from, to);
  } catch (error) {
    if (error instanceof ObjectNotFoundError && (await storage.size(to)) !== null) return;
    throw error;
  }
}

async function scanPending(
  deps: TaskDeps,
  scanner: Scanner,
  blob: BlobRow,
  job: { attempts: number; max_attempts: number },
  log: Logger,
): Promise<void> {
  const { sha256 } = blob;
  const started = performance.now();
  try {
    const { key, stream } = await openBytes(deps.storage, blob);
    const verdict: ScanVerdict = await timed('scan', () => scanner.scan(stream, blob.size));
    const ms = Math.round(performance.now() - started);

    if (verdict.status === 'infected') {
      const signature = verdict.signature ?? 'unknown signature';
      const quarantineKey = quarantineKeyOf(blob.storageKey);
      await quarantine(deps.storage, key, quarantineKey);
      if (await saveInfected(deps.db, sha256, { signature, quarantineKey })) count('infected');
      log.warn({ signature, quarantineKey, size: blob.size, ms }, 'malware detected: bytes quarantined');
      return;
    }

    if (key !== blob.storageKey) {
      // Quarantined by an attempt whose verdict was lost, yet clean now (signatures changed):
      // put the bytes back where the record says they are.
      await deps.storage.move(key, blob.storageKey);
    }
    await saveScan(deps.db, sha256, { status: 'clean', signature: null });
    count('clean');
    log.info({ size: blob.size, ms }, 'scanned: clean');
  } catch (error) {
    if (error instanceof UnscannableError) {
      await saveScan(deps.db, sha256, { status: 'error', signature: null, error: error.message });
      count('unscannable');
      log.warn({ reason: error.message, size: blob.size }, 'these bytes cannot be scanned');
      return;
    }
    if (error instanceof ObjectNotFoundError) {
      // Neither at its key nor in quarantine: no attempt can scan it.
      observeFinal(await abandonScan(deps.db, sha256, 'the stored bytes are missing', 'the stored bytes of this file are missing'));
      count('gave_up');
      log.error({ err: error }, 'scan gave up: the stored bytes are missing');
      return;
    }
    if (isLastAttempt(job)) {
      const reason = errorMessage(error);
      observeFinal(await abandonScan(deps.db, sha256, reason, `virus scan failed after ${job.attempts} attempts: ${reason}`));
      count('gave_up');
      log.error({ err: error }, 'scan gave up after the last attempt; the files are failed');
      return;
    }
    count('retry');
    log.warn({ reason: errorMessage(error), maxAttempts: job.max_attempts }, 'scan failed; the job will retry');
    throw error;
  }
}

export function scanBlob(deps: TaskDeps): Task<'scan_blob'> {
  return async (rawPayload, helpers) => {
    const { sha256 } = parsePayload('scan_blob', rawPayload);
    const log = deps.logger.child({ task: helpers.job.task_identifier, sha256, attempt: helpers.job.attempts });
    const blob = await findBlob(deps.db, sha256);
    if (!blob) return;
    if (blob.scanStatus === 'pending') {
      if (deps.scanner) {
        await scanPending(deps, deps.scanner, blob, helpers.job, log);
      } else {
        // Enqueued by a process that has a scanner configured; this worker has none.
        await saveScan(deps.db, sha256, { status: 'skipped', signature: null });
        log.warn('no virus scanner configured in this worker: scan skipped');
      }
    }
    observeFinal(await finalizeBlob(deps.db, sha256, stepOptions(deps)));
    // After every run, not only the one that saved the verdict: a retry after a crash still enqueues.
    await enqueuePreviewsIfClean(deps.db, sha256, deps.config.jobMaxAttempts);
  };
}
