// What @tus/file-store keeps of each upload in `<id>.json` (its length, metadata and creation
// time), answered from the upload's record when the upload was created with its length: the
// record is written before the store creates the upload and says the same, and that length never
// changes, so one file fewer is created and written per upload. An upload created without a
// length keeps its `.json` as before: the lifecycle writes a declared length to the record before
// the store hears of it, and @tus/server must still see the length as not yet declared then.
import { FileKvStore, Upload, type KvStore } from '@tus/utils';

/** The facts of an upload record the store needs (a record row has them). */
export interface TusInfoRecord {
  size: number | null;
  tusMetadata: Record<string, string | null> | null;
  createdAt: Date;
}

/** The record of an upload whose bytes are in the store, or undefined. */
export type TusInfoLookup = (uploadId: string) => Promise<TusInfoRecord | undefined>;

/** Uploads of known length remembered in this process at once (a few hundred bytes each). */
const CACHED_UPLOADS = 10_000;

export class RecordTusInfo implements KvStore<Upload> {
  private readonly files: FileKvStore<Upload>;
  // Created with a known length, most recently used last: theirs never changes.
  private readonly known = new Map<string, Upload>();
  // What get read from a `.json`, so that setting it back writes the `.json`.
  private readonly fromFile = new WeakSet<Upload>();

  constructor(
    directory: string,
    private readonly lookup: TusInfoLookup,
  ) {
    this.files = new FileKvStore<Upload>(directory);
  }

  async get(id: string): Promise<Upload | undefined> {
    const cached = this.known.get(id);
    if (cached) {
      this.known.delete(id);
      this.known.set(id, cached);
      return cached;
    }
    // Created without a length (its length may be declared through another instance), or before
    // records held it: its `.json`, read each time.
    const file = await this.files.get(id);
    if (file) {
      this.fromFile.add(file);
      return file;
    }
    const record = await this.lookup(id);
    if (!record || record.size === null) return undefined;
    const upload = new Upload({
      id,
      size: record.size,
      offset: 0,
      metadata: (record.tusMetadata ?? {}) as Upload['metadata'],
      creation_date: record.createdAt.toISOString(),
    });
    this.remember(id, upload);
    return upload;
  }

  async set(id: string, upload: Upload): Promise<void> {
    // A creation with its length: the record says it. Otherwise a creation without one, or the
    // declared length of such an upload (FileStore reads it with get and sets what it read).
    if (upload.size !== undefined && !this.fromFile.has(upload)) {
      this.remember(id, upload);
      return;
    }
    await this.files.set(id, upload);
  }

  async delete(id: string): Promise<void> {
    this.known.delete(id);
    await this.files.delete(id).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException)?.code !== 'ENOENT') throw error;
    });
  }

  private remember(id: string, upload: Upload): void {
    this.known.set(id, upload);
    if (this.known.size > CACHED_UPLOADS) this.known.delete(this.known.keys().next().value!);
  }
}
