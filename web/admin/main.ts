// The admin dashboard (/admin, role admin): the analytics API (src/http/routes/admin-analytics.ts)
// as tiles, uPlot charts and tables over a chosen window, refreshed while open, plus the routine
// actions (lifecycle cleanup, an owner's quota, finding any file by id or sha256). Same token
// handling as the upload page.
import { ApiError, api, getToken, loadConfig, setToken } from '../src/api.js';
import { formatBytes, formatNumber } from '../src/format.js';
import { drawChart } from './charts.js';
import './styles.css';

interface UploadStats {
  total: number;
  succeeded: number;
  failed: number;
  inProgress: number;
  successRate: number | null;
  bytesStored: number;
  byStatus: Record<string, number>;
  scans: Record<string, number>;
}
interface QueueStats {
  pending: number;
  running: number;
  retrying: number;
  failed: number;
}
interface Failures {
  reasons: Array<{ status: string; reason: string; count: number }>;
}
interface TopUploaders {
  owners: Array<{ ownerId: string; readyFiles: number; bytes: number }>;
}

const WINDOWS: Record<string, { ms: number; buckets: number }> = {
  '1h': { ms: 3_600_000, buckets: 12 },
  '24h': { ms: 86_400_000, buckets: 24 },
  '7d': { ms: 7 * 86_400_000, buckets: 14 },
  '30d': { ms: 30 * 86_400_000, buckets: 15 },
};
const REFRESH_MS = 15_000;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
let current = '24h';
let timer: number | undefined;

const range = (start: number, end: number) => `start=${encodeURIComponent(new Date(start).toISOString())}&end=${encodeURIComponent(new Date(end).toISOString())}`;

function show(state: 'auth' | 'admin-only' | 'dashboard' | 'error', message = ''): void {
  $('auth').hidden = state !== 'auth';
  $('admin-only').hidden = state !== 'admin-only';
  $('dashboard').hidden = state !== 'dashboard';
  $('error').hidden = state !== 'error';
  $('error').textContent = message;
}

function rows(table: string, cells: string[][]): void {
  const body = $(table).querySelector('tbody')!;
  body.replaceChildren(
    ...cells.map((row) => {
      const tr = document.createElement('tr');
      for (const text of row) tr.append(Object.assign(document.createElement('td'), { textContent: text }));
      return tr;
    }),
  );
}

async function refresh(): Promise<void> {
  const end = Date.now();
  const { ms, buckets } = WINDOWS[current]!;
  const start = end - ms;
  const step = ms / buckets;
  const edges = Array.from({ length: buckets }, (_, i) => start + i * step);
  const [uploads, queue, failures, top, duplicates, series] = await Promise.all([
    api<UploadStats>(`api/admin/analytics/uploads?${range(start, end)}`),
    api<QueueStats>('api/admin/analytics/queue'),
    api<Failures>(`api/admin/analytics/failures?${range(start, end)}`),
    api<TopUploaders>(`api/admin/analytics/top-uploaders?${range(start, end)}&limit=10`),
    api<{ bytesSaved: number }>('api/admin/duplicates?limit=1'),
    Promise.all(edges.map((from) => api<UploadStats>(`api/admin/analytics/uploads?${range(from, Math.min(end, from + step))}`))),
  ]);

  $('tile-total').textContent = formatNumber(uploads.total);
  $('tile-success').textContent = uploads.successRate === null ? '–' : `${(uploads.successRate * 100).toFixed(1)} %`;
  $('tile-bytes').textContent = formatBytes(uploads.bytesStored);
  $('tile-in-progress').textContent = formatNumber(uploads.inProgress);
  $('tile-pending').textContent = formatNumber(queue.pending);
  $('tile-running').textContent = formatNumber(queue.running);
  $('tile-retrying').textContent = formatNumber(queue.retrying);
  $('tile-failed-jobs').textContent = formatNumber(queue.failed);
  $('tile-infected').textContent = formatNumber(uploads.byStatus.infected ?? 0);
  $('tile-dedup').textContent = formatBytes(duplicates.bytesSaved);

  const times = edges.map((t) => Math.round(t / 1000));
  drawChart($('chart-uploads'), { label: 'Uploads', times, values: series.map((s) => s.total), format: (v) => formatNumber(Math.round(v)) });
  drawChart($('chart-bytes'), { label: 'Bytes stored', times, values: series.map((s) => s.bytesStored), format: (v) => formatBytes(Math.round(v)) });

  rows('scans', Object.entries(uploads.scans).map(([verdict, count]) => [verdict, formatNumber(count)]));
  rows('failures', failures.reasons.map((r) => [r.status, r.reason, formatNumber(r.count)]));
  rows('uploaders', top.owners.map((o) => [o.ownerId, formatNumber(o.readyFiles), formatBytes(o.bytes)]));
  $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

async function load(): Promise<void> {
  window.clearTimeout(timer);
  try {
    await refresh();
    show('dashboard');
    timer = window.setTimeout(() => void load(), REFRESH_MS);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) show('auth');
    else if (error instanceof ApiError && error.status === 403) show('admin-only');
    else show('error', error instanceof Error ? error.message : String(error));
  }
}

function selectWindow(button: HTMLElement): void {
  current = button.dataset.window ?? '24h';
  for (const other of document.querySelectorAll<HTMLElement>('#windows [role="radio"]')) {
    other.setAttribute('aria-checked', String(other === button));
    other.tabIndex = other === button ? 0 : -1;
  }
  void load();
}

async function runCleanup(dryRun: boolean): Promise<void> {
  if (!dryRun && !window.confirm('Remove everything the lifecycle sweep finds due, now?')) return;
  const report = $('cleanup-report');
  report.hidden = false;
  report.textContent = dryRun ? 'Planning…' : 'Running…';
  try {
    const result = await api<Record<string, unknown>>('api/admin/uploads/cleanup', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ dryRun }),
    });
    report.textContent = JSON.stringify(result, null, 2);
    if (!dryRun) void load();
  } catch (error) {
    report.textContent = error instanceof Error ? error.message : String(error);
  }
}

async function setQuota(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const owner = $<HTMLInputElement>('quota-owner').value.trim();
  const text = $<HTMLInputElement>('quota-bytes').value.trim();
  const status = $('quota-status');
  if (text !== '' && !/^\d+$/.test(text)) {
    status.textContent = 'Max bytes is a whole number of bytes, or empty for the default.';
    return;
  }
  try {
    const quota = await api<{ maxBytes: number | null }>(`api/admin/quotas/${encodeURIComponent(owner)}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ maxBytes: text === '' ? null : Number(text) }),
    });
    status.textContent = `${owner}: max bytes ${quota.maxBytes === null ? 'default (unlimited or QUOTA_MAX_BYTES)' : formatBytes(quota.maxBytes)}`;
  } catch (error) {
    status.textContent = error instanceof Error ? error.message : String(error);
  }
}

interface FoundFile {
  id: string;
  ownerId: string;
  filename: string;
  status: string;
  size: number | null;
  sha256: string | null;
  rejectionReason: string | null;
}

/** Any owner's files by id (32 hex) or by content (sha256, 64 hex). */
async function lookUp(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const query = $<HTMLInputElement>('lookup-query').value.trim().toLowerCase();
  const status = $('lookup-status');
  const table = $('lookup-results');
  const by = /^[0-9a-f]{32}$/.test(query) ? 'id' : /^[0-9a-f]{64}$/.test(query) ? 'sha256' : null;
  if (!by) {
    status.textContent = 'Enter a file id (32 hexadecimal characters) or a sha256 (64).';
    table.hidden = true;
    return;
  }
  try {
    const { files } = await api<{ files: FoundFile[] }>(`api/admin/files?${by}=${query}`);
    status.textContent = files.length === 0 ? `No file has this ${by === 'id' ? 'id' : 'sha256'}.` : `${formatNumber(files.length)} found`;
    table.hidden = files.length === 0;
    rows('lookup-results', files.map((file) => [file.id, file.ownerId, file.filename, file.rejectionReason ? `${file.status}: ${file.rejectionReason}` : file.status, file.size === null ? '—' : formatBytes(file.size), file.sha256 ?? '—']));
  } catch (error) {
    status.textContent = error instanceof Error ? error.message : String(error);
    table.hidden = true;
  }
}

async function main(): Promise<void> {
  const windows = $('windows');
  windows.addEventListener('click', (event) => {
    const button = (event.target as HTMLElement).closest<HTMLElement>('[role="radio"]');
    if (button) selectWindow(button);
  });
  // A radio group: arrow keys move the choice.
  windows.addEventListener('keydown', (event) => {
    if (!['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'].includes(event.key)) return;
    event.preventDefault();
    const buttons = [...windows.querySelectorAll<HTMLElement>('[role="radio"]')];
    const index = buttons.findIndex((b) => b.getAttribute('aria-checked') === 'true');
    const next = buttons[(index + (event.key === 'ArrowLeft' || event.key === 'ArrowUp' ? -1 : 1) + buttons.length) % buttons.length]!;
    selectWindow(next);
    next.focus();
  });
  for (const button of windows.querySelectorAll<HTMLElement>('[role="radio"]')) button.tabIndex = button.getAttribute('aria-checked') === 'true' ? 0 : -1;
  $('cleanup-dry').addEventListener('click', () => void runCleanup(true));
  $('cleanup-run').addEventListener('click', () => void runCleanup(false));
  $<HTMLFormElement>('quota-form').addEventListener('submit', (event) => void setQuota(event));
  $<HTMLFormElement>('lookup-form').addEventListener('submit', (event) => void lookUp(event));
  $<HTMLFormElement>('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    setToken($<HTMLInputElement>('token').value.trim() || null);
    void load();
  });

  const config = await loadConfig().catch(() => null);
  if (config?.authMode === 'jwt' && !getToken()) {
    show('auth');
    return;
  }
  await load();
}

void main();
