// Pure formatting for the file list: sizes, durations, statuses and the key metadata of each kind.
// No DOM here, so it can be tested in Node.

export interface ScanInfo {
  status: 'pending' | 'clean' | 'infected' | 'skipped' | 'error';
  signature: string | null;
  scannedAt: string | null;
}

/** The file record of GET /api/files/:id (see DESIGN.md). */
export interface FileRecord {
  id: string;
  ownerId: string;
  filename: string;
  mimeType: string | null;
  kind: 'fseq' | 'xsq' | 'audio' | 'video' | 'image' | 'other';
  size: number | null;
  status: 'uploading' | 'processing' | 'ready' | 'rejected' | 'infected' | 'failed' | 'expired' | 'deleted';
  sha256: string | null;
  md5: string | null;
  deduplicated: boolean;
  rejectionReason: string | null;
  failureReason?: string | null;
  createdAt: string;
  completedAt: string | null;
  readyAt: string | null;
  scan: ScanInfo;
  metadata: Record<string, unknown> | null;
  metadataError: string | null;
  /** Bytes received so far (SSE snapshots and progress events). */
  offset?: number;
}

const numberFormat = new Intl.NumberFormat('en-US');

export function formatNumber(value: number): string {
  return numberFormat.format(value);
}

/** 1536 → "1.5 KiB" (binary units, as the uploader above the list counts them). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes)) return '—';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1024;
    unit++;
  } while (value >= 1024 && unit < units.length - 1);
  const shown = value >= 100 ? String(Math.round(value)) : value.toFixed(value >= 10 ? 1 : 2).replace(/\.?0+$/, '');
  return `${shown} ${units[unit]}`;
}

/** A configured limit as it was most likely written: 500000000 → "500 MB", 5368709120 → "5 GiB". */
export function formatLimit(bytes: number): string {
  const units: Array<[number, string]> = [
    [2 ** 40, 'TiB'],
    [1e12, 'TB'],
    [2 ** 30, 'GiB'],
    [1e9, 'GB'],
    [2 ** 20, 'MiB'],
    [1e6, 'MB'],
    [2 ** 10, 'KiB'],
    [1e3, 'KB'],
  ];
  for (const [factor, unit] of units) {
    if (bytes >= factor && Number.isInteger(bytes / factor)) return `${formatNumber(bytes / factor)} ${unit}`;
  }
  return formatBytes(bytes);
}

/** 237200 → "3:57.2", 783.67 → "0.78 s", 3_725_000 → "1:02:05". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 10_000) return `${(ms / 1000).toFixed(2).replace(/\.?0+$/, '')} s`;
  const totalTenths = Math.round(ms / 100);
  const tenths = totalTenths % 10;
  const totalSeconds = Math.floor(totalTenths / 10);
  const seconds = totalSeconds % 60;
  const minutes = Math.floor(totalSeconds / 60) % 60;
  const hours = Math.floor(totalSeconds / 3600);
  const ss = String(seconds).padStart(2, '0');
  const tail = tenths ? `.${tenths}` : '';
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${ss}${tail}` : `${minutes}:${ss}${tail}`;
}

export const STATUS_LABELS: Record<FileRecord['status'], string> = {
  uploading: 'Uploading',
  processing: 'Processing',
  ready: 'Ready',
  rejected: 'Rejected',
  infected: 'Infected',
  failed: 'Failed',
  expired: 'Expired',
  deleted: 'Deleted',
};

export const KIND_LABELS: Record<FileRecord['kind'], string> = {
  fseq: 'FSEQ',
  xsq: 'XSQ',
  audio: 'Audio',
  video: 'Video',
  image: 'Image',
  other: 'File',
};

/** The virus-scan verdict in words. */
export function scanText(scan: ScanInfo, status: FileRecord['status']): string {
  switch (scan.status) {
    case 'clean':
      return 'Clean';
    case 'infected':
      return `Infected${scan.signature ? `: ${scan.signature}` : ''}`;
    case 'skipped':
      return 'Not scanned (no scanner configured)';
    case 'error':
      return 'Scan failed';
    case 'pending':
    default:
      return status === 'uploading' || status === 'processing' ? 'Pending' : 'Not scanned';
  }
}

/** Why a file is not usable, in words; null when nothing is wrong. */
export function problemText(file: FileRecord): string | null {
  switch (file.status) {
    case 'rejected':
      return `Rejected: ${file.rejectionReason ?? 'the file did not pass validation'}`;
    case 'infected':
      return `Infected: ${file.scan.signature ?? 'malware found'} — quarantined`;
    case 'failed':
      return `Processing failed: ${file.failureReason ?? 'the server gave up after several attempts'}`;
    case 'expired':
      return 'Expired: the upload was not finished in time';
    default:
      return null;
  }
}

export interface MetaItem {
  /** The metadata field the value comes from (data-field in the page, for tests and styling). */
  field: string;
  label: string;
  value: string;
}

const num = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);
const str = (value: unknown): string | null => (typeof value === 'string' && value.trim() !== '' ? value : null);

function push(items: MetaItem[], field: string, label: string, value: string | null): void {
  if (value !== null) items.push({ field, label, value });
}

/** The key metadata of a file, per kind, in display order. */
export function metadataItems(file: Pick<FileRecord, 'kind' | 'metadata'>): MetaItem[] {
  const m = file.metadata;
  if (!m) return [];
  const items: MetaItem[] = [];
  const n = (key: string) => num(m[key]);
  const s = (key: string) => str(m[key]);
  switch (file.kind) {
    case 'fseq': {
      push(items, 'channelCount', 'Channels', n('channelCount') === null ? null : formatNumber(n('channelCount')!));
      push(items, 'frameCount', 'Frames', n('frameCount') === null ? null : formatNumber(n('frameCount')!));
      const fps = n('fps');
      push(items, 'fps', 'FPS', fps === null ? null : String(Math.round(fps * 100) / 100));
      push(items, 'durationMs', 'Duration', n('durationMs') === null ? null : formatDuration(n('durationMs')));
      push(items, 'mediaFile', 'Media file', s('mediaFile'));
      push(items, 'version', 'Version', s('version'));
      const compression = s('compression');
      push(items, 'compression', 'Compression', compression);
      break;
    }
    case 'xsq': {
      push(items, 'xlightsVersion', 'xLights version', s('xlightsVersion'));
      push(items, 'sequenceType', 'Type', s('sequenceType'));
      push(items, 'durationMs', 'Duration', n('durationMs') === null ? null : formatDuration(n('durationMs')));
      push(items, 'modelCount', 'Models', n('modelCount') === null ? null : formatNumber(n('modelCount')!));
      push(items, 'effectCount', 'Effects', n('effectCount') === null ? null : formatNumber(n('effectCount')!));
      push(items, 'timingTrackCount', 'Timing tracks', n('timingTrackCount') === null ? null : formatNumber(n('timingTrackCount')!));
      push(items, 'mediaFile', 'Media file', s('mediaFile'));
      push(items, 'song', 'Song', s('song'));
      push(items, 'artist', 'Artist', s('artist'));
      break;
    }
    case 'audio':
    case 'video': {
      const seconds = n('durationSec');
      push(items, 'durationSec', 'Duration', seconds === null ? null : formatDuration(seconds * 1000));
      push(items, 'codec', 'Codec', s('codec') ?? s('container'));
      const rate = n('sampleRate');
      push(items, 'sampleRate', 'Sample rate', rate === null ? null : `${rate} Hz`);
      const channels = n('channels');
      push(items, 'channels', 'Channels', channels === null ? null : `${channels} ch`);
      const bitrate = n('bitrate');
      push(items, 'bitrate', 'Bitrate', bitrate === null ? null : `${Math.round(bitrate / 1000)} kbps`);
      push(items, 'title', 'Title', s('title'));
      push(items, 'artist', 'Artist', s('artist'));
      break;
    }
    default: {
      const width = n('width');
      const height = n('height');
      if (width !== null && height !== null) push(items, 'dimensions', 'Dimensions', `${width} × ${height}`);
    }
  }
  return items;
}
