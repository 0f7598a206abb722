// The owner's files, live: loaded from GET /api/files and kept current by GET /api/events
// (`status` carries the fresh record, `progress` the bytes received). Plain DOM, no framework.
import { api, ApiError, followEvents } from './api.js';
import {
  formatBytes,
  formatLimit,
  KIND_LABELS,
  metadataItems,
  problemText,
  scanText,
  STATUS_LABELS,
  type FileRecord,
} from './format.js';
import { Previews } from './previews.js';

export interface FileListElements {
  list: HTMLUListElement;
  empty: HTMLElement;
  error: HTMLElement;
  live: HTMLElement;
  more: HTMLButtonElement;
  quota: HTMLElement;
  announcer: HTMLElement;
}

interface FileListPage {
  files: FileRecord[];
  nextCursor: string | null;
}

interface Quota {
  ownerId: string;
  maxBytes: number | null;
  maxFiles: number | null;
  usedBytes: number;
  fileCount: number;
}

const PAGE_SIZE = 50;
const FINAL: ReadonlyArray<FileRecord['status']> = ['ready', 'rejected', 'infected', 'failed', 'expired'];

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Array<Node | string | null | undefined>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

export class FileList {
  private readonly files = new Map<string, FileRecord>();
  private readonly items = new Map<string, HTMLLIElement>();
  private stopEvents: (() => void) | null = null;
  private nextCursor: string | null = null;
  private quotaTimer: number | undefined;
  private generation = 0;
  /** Files whose delete the user asked for here and that have not gone from the list yet. */
  private readonly deleting = new Set<string>();
  private readonly previews = new Previews();

  constructor(
    private readonly els: FileListElements,
    private readonly onUnauthorized: (error: ApiError) => void,
  ) {
    els.more.addEventListener('click', () => void this.loadMore());
    els.list.addEventListener('click', (event) => {
      const button = (event.target as Element).closest('button[data-action]');
      if (!(button instanceof HTMLButtonElement)) return;
      const id = button.closest('li')?.dataset.id;
      if (!id) return;
      if (button.dataset.action === 'delete') void this.remove(id, button);
      else if (button.dataset.action === 'download') void this.download(id, button);
    });
  }

  /** (Re)starts: follows the event stream and loads the list each time it (re)connects. */
  start(): void {
    this.stop();
    const generation = ++this.generation;
    this.stopEvents = followEvents('api/events', {
      onOpen: () => {
        this.setLive(true);
        this.showError(null);
      },
      onEvent: (event, data) => {
        if (generation !== this.generation) return;
        // `ready` comes once the subscription is in place: loading now misses nothing.
        if (event === 'ready') void this.reload(generation);
        else if (event === 'status' || event === 'snapshot') this.onStatus(data as FileRecord);
        else if (event === 'progress') this.onProgress(data as { id: string; offset: number; size: number | null });
      },
      onDisconnect: (error) => {
        this.setLive(false);
        if (error.status === 401 || error.status === 403) {
          this.onUnauthorized(error);
          this.showError(error.message);
        } else {
          this.showError('Live updates are interrupted; reconnecting…');
        }
      },
    });
  }

  stop(): void {
    this.stopEvents?.();
    this.stopEvents = null;
    this.setLive(false);
  }

  clear(): void {
    for (const id of this.files.keys()) this.previews.forget(id);
    this.files.clear();
    this.items.clear();
    this.els.list.replaceChildren();
    this.els.quota.textContent = '';
    this.updateEmpty();
  }

  private setLive(live: boolean): void {
    this.els.live.dataset.live = String(live);
    this.els.live.textContent = live ? 'Live' : 'Offline';
    this.els.live.title = live ? 'Changes appear as they happen' : 'Not receiving live updates';
  }

  private showError(message: string | null): void {
    this.els.error.textContent = message ?? '';
    this.els.error.hidden = !message;
  }

  private async reload(generation: number): Promise<void> {
    try {
      const page = await api<FileListPage>(`api/files?limit=${PAGE_SIZE}`);
      if (generation !== this.generation) return;
      const keep = new Set(page.files.map((f) => f.id));
      // Files beyond the first page that were loaded before stay; vanished ones on it go.
      for (const id of [...this.files.keys()]) {
        const known = this.files.get(id)!;
        const onFirstPage = page.files.length < PAGE_SIZE || known.createdAt >= page.files[page.files.length - 1]!.createdAt;
        if (!keep.has(id) && onFirstPage) this.delete(id);
      }
      for (const file of page.files) this.upsert(file);
      this.nextCursor = page.nextCursor;
      this.els.more.hidden = !this.nextCursor;
      this.updateEmpty();
      this.scheduleQuota(0);
    } catch (error) {
      this.handleError(error);
    }
  }

  private async loadMore(): Promise<void> {
    if (!this.nextCursor) return;
    this.els.more.disabled = true;
    try {
      const page = await api<FileListPage>(`api/files?limit=${PAGE_SIZE}&cursor=${encodeURIComponent(this.nextCursor)}`);
      for (const file of page.files) this.upsert(file);
      this.nextCursor = page.nextCursor;
      this.els.more.hidden = !this.nextCursor;
    } catch (error) {
      this.handleError(error);
    } finally {
      this.els.more.disabled = false;
    }
  }

  private handleError(error: unknown): void {
    const apiError = error instanceof ApiError ? error : new ApiError(0, null);
    if (apiError.status === 401) this.onUnauthorized(apiError);
    this.showError(apiError.message);
  }

  private onStatus(record: FileRecord): void {
    if (record.status === 'deleted') {
      this.delete(record.id);
      this.scheduleQuota();
      return;
    }
    if (typeof record.filename !== 'string') {
      // A bare {id, status}: the record itself could not be read; fetch it.
      void this.fetchOne(record.id);
      return;
    }
    const before = this.files.get(record.id);
    this.upsert(record);
    if (before && before.status !== record.status && FINAL.includes(record.status)) {
      const problem = problemText(record);
      this.announce(problem ? `${record.filename}: ${problem}` : `${record.filename} is ${STATUS_LABELS[record.status].toLowerCase()}`);
    }
    if (!before || before.status !== record.status) this.scheduleQuota();
  }

  private onProgress({ id, offset, size }: { id: string; offset: number; size: number | null }): void {
    const file = this.files.get(id);
    if (!file) {
      void this.fetchOne(id);
      return;
    }
    if (file.status !== 'uploading') return;
    file.offset = offset;
    if (size !== null) file.size = size;
    this.updateProgress(id);
  }

  private async fetchOne(id: string): Promise<void> {
    try {
      const record = await api<FileRecord>(`api/files/${encodeURIComponent(id)}`);
      if (!this.files.has(id) || this.files.get(id)!.status !== record.status) this.onStatus(record);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) this.delete(id);
    }
  }

  private announce(text: string): void {
    // Re-set so repeated messages are spoken again.
    this.els.announcer.textContent = '';
    window.setTimeout(() => (this.els.announcer.textContent = text), 50);
  }

  private scheduleQuota(delay = 500): void {
    window.clearTimeout(this.quotaTimer);
    this.quotaTimer = window.setTimeout(() => void this.refreshQuota(), delay);
  }

  private async refreshQuota(): Promise<void> {
    try {
      const quota = await api<Quota>('api/me/quota');
      const used = formatBytes(quota.usedBytes);
      const files = `${quota.fileCount} ${quota.fileCount === 1 ? 'file' : 'files'}`;
      this.els.quota.textContent =
        quota.maxBytes !== null ? `${used} of ${formatLimit(quota.maxBytes)} used · ${files}` : `${used} stored · ${files}`;
    } catch {
      this.els.quota.textContent = '';
    }
  }

  private updateEmpty(): void {
    this.els.empty.hidden = this.files.size > 0;
  }

  private upsert(record: FileRecord): void {
    const previous = this.files.get(record.id);
    if (previous && record.offset === undefined && record.status === 'uploading') record.offset = previous.offset;
    this.files.set(record.id, record);
    const item = this.render(record);
    const existing = this.items.get(record.id);
    if (existing) {
      // Keep keyboard focus on the same control when an item is redrawn.
      const focused = existing.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.action : undefined;
      existing.replaceWith(item);
      if (focused) item.querySelector<HTMLElement>(`[data-action="${focused}"]`)?.focus();
    } else {
      // Newest first.
      const after = [...this.items.entries()].find(([id]) => this.files.get(id)!.createdAt < record.createdAt)?.[1];
      if (after) this.els.list.insertBefore(item, after);
      else this.els.list.append(item);
    }
    this.items.set(record.id, item);
    this.updateEmpty();
  }

  private delete(id: string): void {
    const item = this.items.get(id);
    // Keep the keyboard where it was when the item holding it goes: on the next file's delete
    // button, or the list heading. This happens here, not after our own DELETE answers, because the
    // event stream may report the deletion first (and a disabled button may already have lost focus).
    const focus = document.activeElement;
    const refocus =
      item !== undefined && (item.contains(focus) || (this.deleting.has(id) && (focus === null || focus === document.body)));
    const next = refocus ? ((item.nextElementSibling ?? item.previousElementSibling) as HTMLElement | null) : null;
    this.deleting.delete(id);
    this.previews.forget(id);
    this.files.delete(id);
    item?.remove();
    this.items.delete(id);
    this.updateEmpty();
    if (refocus) (next?.querySelector<HTMLElement>('[data-action="delete"]') ?? document.getElementById('files-title'))?.focus();
  }

  private updateProgress(id: string): void {
    const file = this.files.get(id);
    const item = this.items.get(id);
    if (!file || !item) return;
    const progress = item.querySelector('progress');
    const text = item.querySelector('.file-progress-text');
    if (!progress || !text || !file.size) return;
    progress.max = file.size;
    progress.value = file.offset ?? 0;
    text.textContent = progressText(file);
  }

  private render(file: FileRecord): HTMLLIElement {
    const titleId = `file-${file.id}-name`;
    const statusLabel = STATUS_LABELS[file.status] ?? file.status;
    const head = el(
      'div',
      { class: 'file-head' },
      el('span', { class: `kind kind-${file.kind}` }, KIND_LABELS[file.kind] ?? file.kind),
      el('h3', { class: 'file-name', id: titleId, title: file.filename }, file.filename),
      el('span', { class: `badge badge-${file.status}`, 'data-status': file.status }, statusLabel),
    );

    const facts = el(
      'p',
      { class: 'file-facts' },
      el('span', {}, formatBytes(file.size)),
      el('span', {}, `Scan: ${scanText(file.scan, file.status)}`),
      file.deduplicated ? el('span', { title: 'The same bytes were already stored; no extra space is used' }, 'Deduplicated') : null,
      el('time', { datetime: file.createdAt, title: new Date(file.createdAt).toLocaleString() }, relativeTime(file.createdAt)),
    );

    const parts: Array<Node | null> = [head, facts];

    if (file.status === 'uploading') {
      const progress = el('progress', { 'aria-labelledby': titleId, max: String(file.size ?? 1), value: String(file.offset ?? 0) });
      parts.push(el('div', { class: 'file-progress' }, progress, el('span', { class: 'file-progress-text' }, progressText(file))));
    } else if (file.status === 'processing') {
      parts.push(el('p', { class: 'file-note' }, 'Checking the file: hashing, validating, scanning and reading its metadata…'));
    }

    const problem = problemText(file);
    if (problem) parts.push(el('p', { class: `file-problem problem-${file.status}` }, problem));
    if (file.metadataError && file.status === 'ready') {
      parts.push(el('p', { class: 'file-note' }, `Metadata could not be read: ${file.metadataError}`));
    }

    parts.push(this.previews.slot(file));

    const meta = metadataItems(file);
    if (meta.length > 0) {
      parts.push(
        el(
          'dl',
          { class: 'meta' },
          ...meta.map((item) => el('div', { 'data-field': item.field }, el('dt', {}, item.label), el('dd', {}, item.value))),
        ),
      );
    }

    if (file.sha256) {
      parts.push(el('p', { class: 'file-hash' }, el('span', {}, 'SHA-256'), ' ', el('code', { 'data-field': 'sha256' }, file.sha256)));
    }

    const actions = el('div', { class: 'file-actions' });
    if (file.status === 'ready') {
      actions.append(
        el('button', { type: 'button', class: 'button', 'data-action': 'download', 'aria-describedby': titleId }, 'Download'),
      );
    }
    actions.append(
      el(
        'button',
        {
          type: 'button',
          class: 'button button-danger',
          'data-action': 'delete',
          'aria-label': `Delete ${file.filename}`,
          // Stays disabled while its DELETE is on the way, even when a status event redraws the item.
          ...(this.deleting.has(file.id) ? { disabled: '' } : {}),
        },
        'Delete',
      ),
    );
    parts.push(actions);

    return el(
      'li',
      { class: `file status-${file.status}`, 'data-id': file.id, 'data-status': file.status, 'aria-labelledby': titleId },
      ...parts,
    );
  }

  private async remove(id: string, button: HTMLButtonElement): Promise<void> {
    const file = this.files.get(id);
    if (!file) return;
    const what = file.status === 'uploading' ? 'Cancel and delete' : 'Delete';
    if (!window.confirm(`${what} “${file.filename}”? This cannot be undone.`)) return;
    button.disabled = true;
    this.deleting.add(id);
    try {
      await api<void>(`api/files/${encodeURIComponent(id)}`, { method: 'DELETE' });
      this.delete(id);
      this.announce(`${file.filename} deleted`);
      this.scheduleQuota(0);
    } catch (error) {
      // Already gone (deleted elsewhere): removed like a successful delete, the keyboard kept too.
      if (error instanceof ApiError && error.status === 404) return this.delete(id);
      this.deleting.delete(id);
      const current = this.items.get(id)?.querySelector<HTMLButtonElement>('[data-action="delete"]');
      if (current) current.disabled = false;
      this.handleError(error);
    }
  }

  private async download(id: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      // A short-lived signed link: works without the token, so the browser can download it itself.
      const link = await api<{ url: string }>(`api/files/${encodeURIComponent(id)}/download-url`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ expiresIn: 60 }),
      });
      const anchor = el('a', { href: new URL(link.url, document.baseURI).toString(), download: this.files.get(id)?.filename ?? '' });
      anchor.hidden = true;
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
    } catch (error) {
      this.handleError(error);
    } finally {
      button.disabled = false;
    }
  }
}

function progressText(file: FileRecord): string {
  if (!file.size) return `${formatBytes(file.offset ?? 0)} received`;
  const percent = Math.floor(((file.offset ?? 0) / file.size) * 100);
  return `${percent}% · ${formatBytes(file.offset ?? 0)} of ${formatBytes(file.size)}`;
}

function relativeTime(iso: string): string {
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 45) return 'just now';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
