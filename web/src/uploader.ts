// The upload area: Uppy's Dashboard (drag and drop, several files, progress, pause/resume, retry)
// uploading with tus to this server, or (STORAGE=s3, a switch) straight to the bucket (direct.ts).
// Golden Retriever keeps the selected files (in IndexedDB) and their tus upload URLs (or multipart
// upload ids) across a page reload, so an interrupted upload resumes where it stopped; for files
// too large to keep, re-adding the same file resumes a tus upload too (tus fingerprint).
import Uppy, { RestrictionError, type UppyFile } from '@uppy/core';
import Dashboard from '@uppy/dashboard';
import GoldenRetriever from '@uppy/golden-retriever';
import Tus from '@uppy/tus';
import '@uppy/core/css/style.min.css';
import '@uppy/dashboard/css/style.min.css';
import { authHeaders, getToken, type PublicConfig } from './api.js';
import { confirmDirectUpload, useDirectUploads } from './direct.js';
import { formatBytes, formatLimit } from './format.js';
import { friendlyError, parseServerError } from './messages.js';

type Meta = Record<string, unknown>;
type Body = Record<string, never>;

export interface UploaderOptions {
  config: PublicConfig;
  target: HTMLElement;
  /** Shows (or, with null, clears) a problem with one file, in words. */
  report(file: { id: string; name: string }, message: string | null): void;
  /** The switch between tus through the server and straight to the bucket (shown when the server offers it). */
  directSwitch?: { container: HTMLElement; input: HTMLInputElement };
}

const MiB = 2 ** 20;
/** Sent in PATCH requests of this size at most, so proxies with body limits (100 MB at some CDNs) pass them. */
const CHUNK_SIZE = 50 * MiB;
/** Files up to this size are kept in the browser (IndexedDB) so a reload can resume them by itself. */
const KEEP_FOR_RESUME = 256 * MiB;

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot).toLowerCase() : '';
}

const KIND_NAMES: Record<string, string> = { fseq: 'FSEQ', xsq: 'XSQ', audio: 'audio', video: 'video', image: 'image', other: 'other' };

/** "FSEQ (.fseq) up to 500 MB · XSQ (.xsq, .xml) up to 100 MB · …" */
export function acceptedText(config: PublicConfig): string {
  return config.limits
    .map((limit) =>
      limit.kind === 'other'
        ? `any other file up to ${formatLimit(limit.maxSize)}`
        : `${KIND_NAMES[limit.kind] ?? limit.kind} (${limit.extensions.join(', ')}) up to ${formatLimit(limit.maxSize)}`,
    )
    .join(' · ');
}

interface TusRequestLike {
  getMethod(): string;
}
interface TusResponseLike {
  getStatus(): number;
  getBody(): string;
}

/**
 * Error responses, kept as they arrive: by the time Uppy reports an upload error it has aborted
 * the request, and an aborted XMLHttpRequest forgets its status and body.
 */
const errorResponses = new WeakMap<TusRequestLike, { status: number; body: string | null }>();

function rememberErrorResponse(request: TusRequestLike, response: TusResponseLike): void {
  const status = response.getStatus();
  if (status < 400) return;
  let body: string | null = null;
  try {
    body = response.getBody();
  } catch {
    body = null;
  }
  errorResponses.set(request, { status, body });
}

/** The server's error behind a tus-js-client error (Uppy passes it through in upload-error), in words. */
export function describeUploadError(error: unknown): string {
  const detailed = (error ?? {}) as {
    originalRequest?: TusRequestLike | null;
    cause?: { originalRequest?: TusRequestLike | null };
    message?: string;
  };
  const request = detailed.originalRequest ?? detailed.cause?.originalRequest ?? null;
  const captured = request ? errorResponses.get(request) : undefined;
  if (captured) return friendlyError(captured.status, parseServerError(captured.body));
  // tus-js-client also writes the response into its message.
  const match = /response code: (\d+), response text: (.*), request id:/s.exec(detailed.message ?? '');
  if (match) return friendlyError(Number(match[1]), parseServerError(match[2]));
  return friendlyError(0, null);
}

/** Remembered per browser, so that a reload resumes an upload the way it was started. */
const DIRECT_KEY = 'tusvault.direct';

function directChosen(config: PublicConfig): boolean {
  if (!config.directUploads) return false;
  try {
    return localStorage.getItem(DIRECT_KEY) !== 'false';
  } catch {
    return true;
  }
}

function rememberDirect(on: boolean): void {
  try {
    localStorage.setItem(DIRECT_KEY, String(on));
  } catch {
    // storage disabled: the choice lives as long as the page
  }
}

function useTus(uppy: Uppy<Meta, Body>, config: PublicConfig): void {
  uppy.use(Tus, {
    endpoint: new URL(config.tusPath.replace(/^\//, ''), document.baseURI).toString(),
    headers: () => authHeaders(),
    chunkSize: CHUNK_SIZE,
    // Retry through network drops and server restarts; a 4xx that retrying cannot fix stops at once.
    retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
    limit: 3,
    allowedMetaFields: ['name', 'type'],
    removeFingerprintOnSuccess: true,
    onAfterResponse: (request, response) => rememberErrorResponse(request, response),
  });
}

/** One uploader at a time: tus through the server, or straight to the bucket. */
function useUploadRoute(uppy: Uppy<Meta, Body>, config: PublicConfig, direct: boolean): void {
  for (const id of ['Tus', 'AwsS3']) {
    const plugin = uppy.getPlugin(id);
    if (plugin) uppy.removePlugin(plugin);
  }
  if (direct) useDirectUploads(uppy, config);
  else useTus(uppy, config);
}

export function createUploader({ config, target, report, directSwitch }: UploaderOptions): Uppy<Meta, Body> {
  const acceptsAnything = config.allowedKinds.includes('other');
  const byExtension = new Map<string, { kind: string; maxSize: number }>();
  for (const limit of config.limits) for (const extension of limit.extensions) byExtension.set(extension, limit);
  const otherLimit = config.limits.find((limit) => limit.kind === 'other');
  const extensions = config.limits.flatMap((limit) => limit.extensions);

  const uppy = new Uppy<Meta, Body>({
    id: 'tusvault',
    // Uppy logs every failed upload at error level, including refusals the page explains in words
    // (quota, type); those are expected outcomes, not faults of the page: keep them as warnings.
    logger: {
      debug: () => {},
      warn: (...args: unknown[]) => console.warn('[Uppy]', ...args),
      error: (...args: unknown[]) => console.warn('[Uppy]', ...args),
    },
    autoProceed: false,
    allowMultipleUploadBatches: true,
    restrictions: {
      maxFileSize: config.maxUploadSize,
      allowedFileTypes: acceptsAnything ? null : extensions,
    },
    onBeforeFileAdded(file, files) {
      if (Object.hasOwn(files, file.id)) return false;
      const name = file.name ?? 'file';
      const rule = byExtension.get(extensionOf(name)) ?? otherLimit;
      if (!rule) {
        throw new RestrictionError(
          `${name}: this type of file is not accepted. Accepted: ${extensions.join(' ')}`,
          { file: file as UppyFile<Meta, Body> },
        );
      }
      if (file.size != null && file.size > rule.maxSize) {
        throw new RestrictionError(
          `${name}: this file is too large (${formatBytes(file.size)}); ${KIND_NAMES[rule.kind] ?? rule.kind} files may be at most ${formatLimit(rule.maxSize)}.`,
          { file: file as UppyFile<Meta, Body> },
        );
      }
      return true;
    },
    onBeforeUpload() {
      if (config.authMode === 'jwt' && !getToken()) {
        uppy.info('Enter your access token above before uploading.', 'error', 6000);
        document.getElementById('token')?.focus();
        return false;
      }
      return true;
    },
  });

  uppy.use(Dashboard, {
    inline: true,
    target,
    width: '100%',
    height: 360,
    theme: 'light',
    proudlyDisplayPoweredByUppy: false,
    hideProgressDetails: false,
    showRemoveButtonAfterComplete: true,
    fileManagerSelectionType: 'files',
    note: acceptedText(config),
    hideProgressAfterFinish: false,
    locale: {
      strings: {
        dropPasteFiles: 'Drop files here or %{browseFiles}',
        uploadFailed: 'Upload failed — see the message below',
      },
    },
  });

  let direct = directChosen(config);
  useUploadRoute(uppy, config, direct);
  if (directSwitch && config.directUploads) {
    const { container, input } = directSwitch;
    container.hidden = false;
    input.checked = direct;
    input.addEventListener('change', () => {
      if (Object.keys(uppy.getState().currentUploads).length > 0) {
        input.checked = direct;
        uppy.info('Wait for the uploads in progress to finish before switching.', 'info', 5000);
        return;
      }
      direct = input.checked;
      rememberDirect(direct);
      useUploadRoute(uppy, config, direct);
    });
  }

  uppy.use(GoldenRetriever, {
    // Files are kept in IndexedDB up to this size; the options reach the store unchanged.
    indexedDB: { maxFileSize: KEEP_FOR_RESUME, maxTotalSize: 4 * KEEP_FOR_RESUME } as { name?: string },
  });

  uppy.on('upload-error', (file, error) => {
    if (!file) return;
    const message = describeUploadError(error);
    // Replace tus-js-client's technical text in the Dashboard too.
    uppy.setFileState(file.id, { error: message });
    report({ id: file.id, name: file.name ?? 'file' }, message);
    // Uppy's own notice ("Failed to upload x", details: tus-js-client's technical text) just went
    // up: say it in words instead, in the same place.
    const { info } = uppy.getState();
    const index = info.findLastIndex((entry) => entry.type === 'error' && entry.message.includes(file.name ?? ''));
    if (index >= 0) {
      const replaced = { ...info[index]!, message: `${file.name ?? 'A file'} was not uploaded: ${message}`, details: null };
      uppy.setState({ info: info.map((entry, i) => (i === index ? replaced : entry)) });
    }
  });
  uppy.on('restriction-failed', (file, error) => {
    if ((error as { isUserFacing?: boolean }).isUserFacing === false) return;
    report({ id: file?.id ?? `restriction-${Date.now()}`, name: file?.name ?? 'file' }, error.message);
  });
  const clear = (file: { id: string; name?: string } | undefined) => {
    if (file) report({ id: file.id, name: file.name ?? 'file' }, null);
  };
  uppy.on('file-removed', clear);
  uppy.on('upload-retry', clear);
  uppy.on('upload-success', (file, response) => {
    clear(file);
    const key = (response.body as { key?: unknown } | undefined)?.key;
    if (!file || !direct || typeof key !== 'string') return;
    confirmDirectUpload(key).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      uppy.setFileState(file.id, { error: message });
      report({ id: file.id, name: file.name ?? 'file' }, message);
    });
  });
  uppy.on('retry-all', (files) => files.forEach(clear));

  return uppy;
}
