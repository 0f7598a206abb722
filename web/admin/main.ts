// The admin dashboard (/admin, role admin): the analytics API (src/http/routes/admin-analytics.ts)
// as tiles, uPlot charts (each with its numbers as a table) and breakdown tables with bars over a
// chosen window, refreshed while open, plus the routine
// actions (lifecycle cleanup, an owner's quota, finding any file by id or sha256). Same token
// handling as the upload page.
import { ApiError, api, getToken, loadConfig, setToken } from '../src/api.js';
import { formatBytes, formatNumber } from '../src/format.js';
import { drawChart } from './charts.js';
import { fillBars, fillRows } from './tables.js';
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
  uploadsProcessing: number;
  byStep: Record<string, { pending: number; running: number; retrying: number; failed: number }>;
  failedJobs: Array<{ task: string; key: string | null; attempts: number; lastError: string | null }>;
}
interface Failures {
  reasons: Array<{ status: string; reason: string; count: number }>;
}
interface TopUploaders {
  owners: Array<{ ownerId: string; readyFiles: number; bytes: number }>;
}
interface Series {
  buckets: Array<{
    start: string;
    total: number;
    succeeded: number;
    failed: number;
    successRate: number | null;
    bytesStored: number;
    dedupBytes: number;
    readyFiles: number;
    readyP50Ms: number | null;
    readyP95Ms: number | null;
  }>;
}
interface Storage {
  byKind: Array<{ kind: string; files: number; bytes: number; storedBytes: number }>;
  byOwner: Array<{ ownerId: string; files: number; bytes: number }>;
}
interface Quarantine {
  files: Array<{ id: string; ownerId: string; filename: string; signature: string | null; at: string | null }>;
}
interface Tiers {
  tiers: Array<{ tier: string; objects: number; bytes: number }>;
}

// Each window's bucket count: the series' resolution (5 min, 1 h, 6 h, 1 day).
const WINDOWS: Record<string, { ms: number; buckets: number }> = {
  '1h': { ms: 3_600_000, buckets: 12 },
  '24h': { ms: 86_400_000, buckets: 24 },
  '7d': { ms: 7 * 86_400_000, buckets: 28 },
  '30d': { ms: 30 * 86_400_000, buckets: 30 },
};
const REFRESH_MS = 15_000;
const BLUE = '#2f6fde';
const ORANGE = '#c2410c';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const body = (table: string) => $<HTMLTableElement>(table).tBodies[0]!;
let current = '24h';
let timer: number | undefined;

const range = (start: number, end: number) => `start=${encodeURIComponent(new Date(start).toISOString())}&end=${encodeURIComponent(new Date(end).toISOString())}`;
const percent = (rate: number) => `${(rate * 100).toFixed(1)} %`;
const duration = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`);
const dash = <T>(value: T | null, format: (v: T) => string) => (value === null ? '–' : format(value));

function show(state: 'auth' | 'admin-only' | 'dashboard' | 'error', message = ''): void {
  $('auth').hidden = state !== 'auth';
  $('admin-only').hidden = state !== 'admin-only';
  $('dashboard').hidden = state !== 'dashboard';
  $('error').hidden = state !== 'error';
  $('error').textContent = message;
}

function rows(table: string, cells: string[][], empty?: string): void {
  fillRows(body(table), cells, empty);
}

function drawSeries(series: Series): void {
  const { buckets } = series;
  const times = buckets.map((b) => Math.round(Date.parse(b.start) / 1000));
  const from = buckets.map((b) => new Date(b.start).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }));
  const count = (v: number) => formatNumber(Math.round(v));
  const size = (v: number) => formatBytes(Math.round(v));

  drawChart($('chart-uploads'), { times, lines: [{ label: 'Uploads', values: buckets.map((b) => b.total), color: BLUE }], format: count });
  rows('chart-uploads-numbers', buckets.map((b, i) => [from[i]!, formatNumber(b.total), formatNumber(b.succeeded), formatNumber(b.failed)]));
  drawChart($('chart-bytes'), { times, lines: [{ label: 'Bytes stored', values: buckets.map((b) => b.bytesStored), color: BLUE }], format: size });
  rows('chart-bytes-numbers', buckets.map((b, i) => [from[i]!, formatBytes(b.bytesStored)]));
  drawChart($('chart-success'), { times, lines: [{ label: 'Success rate', values: buckets.map((b) => b.successRate), color: BLUE }], format: percent, max: 1 });
  rows('chart-success-numbers', buckets.map((b, i) => [from[i]!, dash(b.successRate, percent)]));
  drawChart($('chart-latency'), {
    times,
    lines: [
      { label: 'p50', values: buckets.map((b) => b.readyP50Ms), color: BLUE },
      { label: 'p95', values: buckets.map((b) => b.readyP95Ms), color: ORANGE },
    ],
    format: duration,
  });
  rows('chart-latency-numbers', buckets.map((b, i) => [from[i]!, formatNumber(b.readyFiles), dash(b.readyP50Ms, duration), dash(b.readyP95Ms, duration)]));
  drawChart($('chart-dedup'), { times, lines: [{ label: 'Saved', values: buckets.map((b) => b.dedupBytes), color: BLUE }], format: size });
  rows('chart-dedup-numbers', buckets.map((b, i) => [from[i]!, formatBytes(b.dedupBytes)]));
}

async function refresh(): Promise<void> {
  const end = Date.now();
  const { ms, buckets } = WINDOWS[current]!;
  const start = end - ms;
  const window = range(start, end);
  const [uploads, queue, failures, top, duplicates, series, storage, quarantine, tiers] = await Promise.all([
    api<UploadStats>(`api/admin/analytics/uploads?${window}`),
    api<QueueStats>('api/admin/analytics/queue'),
    api<Failures>(`api/admin/analytics/failures?${window}`),
    api<TopUploaders>(`api/admin/analytics/top-uploaders?${window}&limit=10`),
    api<{ bytesSaved: number }>('api/admin/duplicates?limit=1'),
    api<Series>(`api/admin/analytics/series?${window}&buckets=${buckets}`),
    api<Storage>('api/admin/analytics/storage?limit=10'),
    api<Quarantine>('api/admin/analytics/quarantine?limit=20'),
    api<Tiers>('api/admin/analytics/tiers'),
  ]);
  const dashboard = $('dashboard');
  dashboard.dataset.start = new Date(start).toISOString();
  dashboard.dataset.end = new Date(end).toISOString();
  $('window-range').textContent = `${new Date(start).toLocaleString()} – ${new Date(end).toLocaleString()}`;

  $('tile-total').textContent = formatNumber(uploads.total);
  $('tile-success').textContent = dash(uploads.successRate, percent);
  $('tile-bytes').textContent = formatBytes(uploads.bytesStored);
  $('tile-in-progress').textContent = formatNumber(uploads.inProgress);
  $('tile-pending').textContent = formatNumber(queue.pending);
  $('tile-running').textContent = formatNumber(queue.running);
  $('tile-retrying').textContent = formatNumber(queue.retrying);
  $('tile-processing').textContent = formatNumber(queue.uploadsProcessing);
  $('tile-failed-jobs').textContent = formatNumber(queue.failed);
  $('tile-infected').textContent = formatNumber(uploads.byStatus.infected ?? 0);
  $('tile-dedup').textContent = formatBytes(duplicates.bytesSaved);

  drawSeries(series);

  fillBars(
    body('failures'),
    failures.reasons.map((r) => ({ cells: [`${r.status}: ${r.reason}`, formatNumber(r.count)], value: r.count, label: `${r.status}, ${r.reason}: ${r.count}` })),
    'No failures in this window.',
  );
  fillBars(
    body('scans'),
    Object.entries(uploads.scans).map(([verdict, count]) => ({ cells: [verdict, formatNumber(count)], value: count, label: `${verdict}: ${count}` })),
    'No uploads in this window.',
  );
  fillBars(
    body('uploaders'),
    top.owners.map((o) => ({ cells: [o.ownerId, formatNumber(o.readyFiles), formatBytes(o.bytes)], value: o.bytes, label: `${o.ownerId}: ${formatBytes(o.bytes)}` })),
    'No uploads in this window.',
  );
  fillBars(
    body('storage-kind'),
    storage.byKind.map((k) => ({
      cells: [k.kind, formatNumber(k.files), formatBytes(k.bytes), formatBytes(k.storedBytes)],
      value: k.bytes,
      label: `${k.kind}: ${formatBytes(k.bytes)}`,
    })),
    'Nothing stored.',
  );
  fillBars(
    body('storage-owner'),
    storage.byOwner.map((o) => ({ cells: [o.ownerId, formatNumber(o.files), formatBytes(o.bytes)], value: o.bytes, label: `${o.ownerId}: ${formatBytes(o.bytes)}` })),
    'Nothing stored.',
  );
  fillBars(
    body('tiers'),
    tiers.tiers.map((t) => ({ cells: [t.tier, formatNumber(t.objects), formatBytes(t.bytes)], value: t.bytes, label: `${t.tier}: ${formatBytes(t.bytes)}` })),
    'Nothing stored.',
  );
  rows('quarantine', quarantine.files.map((f) => [f.id, f.ownerId, f.filename, f.signature ?? '–', f.at ? new Date(f.at).toLocaleString() : '–']), 'No infected files.');
  rows(
    'queue-steps',
    Object.entries(queue.byStep).map(([step, n]) => [step, formatNumber(n.pending), formatNumber(n.running), formatNumber(n.retrying), formatNumber(n.failed)]),
    'No jobs queued.',
  );
  rows('failed-jobs', queue.failedJobs.map((j) => [j.task, j.key ?? '–', formatNumber(j.attempts), j.lastError ?? '–']), 'No failed jobs.');
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
