// The picture preview of a ready file in the list: an image's thumbnail, an audio file's waveform,
// an FSEQ's light map. Fetched with the same token as the file API (an <img src> cannot send it)
// and shown through a blob: URL, which the page's Content-Security-Policy allows.
import { api, apiUrl, authHeaders } from './api.js';
import type { FileRecord } from './format.js';

interface PreviewList {
  previews: Array<{ name: string; kind: string; size: number; contentType: string }>;
  missing: Array<{ kind: string; reason: string }>;
}

/** The preview shown in the list, per file kind, and what the picture is. */
const PICTURES: Record<string, { kind: string; label: string }> = {
  image: { kind: 'thumbnail-256', label: 'Thumbnail' },
  audio: { kind: 'waveform', label: 'Waveform' },
  fseq: { kind: 'lightmap', label: 'Light map (time left to right, channels top to bottom)' },
};

type Shown = { url: string; label: string; kind: string } | { missing: string } | null;

/**
 * Previews are made just after a file is ready (a long audio file's can take a minute or two):
 * asked again, less and less often, for about two minutes before giving up until the next load.
 */
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15_000, 30_000, 60_000];

export class Previews {
  private readonly loads = new Map<string, Promise<Shown>>();
  private readonly done = new Map<string, Shown>();

  /** A slot for the file's preview, filled now if it is known, else once it has loaded. */
  slot(file: FileRecord): HTMLElement | null {
    const picture = PICTURES[file.kind];
    if (!picture || file.status !== 'ready') return null;
    if (this.done.has(file.id) && this.done.get(file.id) === null) return null; // given up on
    const slot = document.createElement('div');
    slot.className = `file-preview file-preview-${picture.kind}`;
    if (this.done.has(file.id)) {
      fill(slot, this.done.get(file.id)!, file.filename);
    } else {
      slot.dataset.loading = 'true';
      void this.load(file.id, picture).then((shown) => {
        // The item may have been drawn again meanwhile: fill whichever slot is on the page.
        const current = document.querySelector<HTMLElement>(`li.file[data-id="${CSS.escape(file.id)}"] .file-preview`);
        fill(current ?? slot, shown, file.filename);
      });
    }
    return slot;
  }

  /** Frees the picture of a file that left the list. */
  forget(id: string): void {
    const shown = this.done.get(id);
    if (shown && 'url' in shown) URL.revokeObjectURL(shown.url);
    this.done.delete(id);
    this.loads.delete(id);
  }

  private load(id: string, picture: { kind: string; label: string }): Promise<Shown> {
    let loading = this.loads.get(id);
    if (!loading) {
      const wanted = () => this.loads.get(id) === loading;
      loading = fetchPicture(id, picture, wanted).then((shown) => {
        if (this.loads.get(id) === loading) this.done.set(id, shown);
        else if (shown && 'url' in shown) URL.revokeObjectURL(shown.url); // forgotten meanwhile
        return shown;
      });
      this.loads.set(id, loading);
    }
    return loading;
  }
}

/** The picture of one file, asked for until it or a reason exists (or the file left the list). */
async function fetchPicture(id: string, picture: { kind: string; label: string }, wanted: () => boolean): Promise<Shown> {
  const base = `api/files/${encodeURIComponent(id)}/previews`;
  for (let attempt = 0; wanted(); attempt++) {
    try {
      const list = await api<PreviewList>(base);
      const ready = list.previews.find((p) => p.kind === picture.kind);
      if (ready) {
        const response = await fetch(apiUrl(`${base}/${encodeURIComponent(ready.name)}`), { headers: authHeaders() });
        if (response.ok) return { url: URL.createObjectURL(await response.blob()), label: picture.label, kind: picture.kind };
      }
      const missing = list.missing.find((m) => m.kind === picture.kind);
      if (missing) return { missing: missing.reason };
    } catch {
      // not ready any more, or the network: asked again below, then left without a picture
    }
    const delay = RETRY_DELAYS_MS[attempt];
    if (delay === undefined) return null;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  return null;
}

function fill(slot: HTMLElement, shown: Shown, filename: string): void {
  delete slot.dataset.loading;
  if (!shown) {
    slot.remove();
    return;
  }
  if ('missing' in shown) {
    const note = document.createElement('p');
    note.className = 'file-note';
    note.textContent = `No preview: ${shown.missing}`;
    slot.replaceChildren(note);
    return;
  }
  const img = document.createElement('img');
  img.src = shown.url;
  img.alt = `${shown.label} of ${filename}`;
  img.dataset.preview = shown.kind;
  img.decoding = 'async';
  slot.replaceChildren(img);
}
