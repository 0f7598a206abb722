// What @tus/file-store keeps of each upload in `<id>.json` (its length, metadata and creation
// time), answered from the upload's record when that says the same: the record is written before
// the store creates the upload, so one file fewer is created and written per upload (read back,
// it is one primary-key lookup beside the endpoint's own for the same request). The `.json` stays
// for an upload created without a length (the lifecycle writes a declared length to the record
// before the store hears of it, and @tus/server must still see it undeclared then) and for
// metadata whose keys jsonb would reorder (HEAD returns Upload-Metadata as the client sent it).
import { FileKvStore, Upload, type KvStore } from '@tus/utils';
import { isMissingFile } from './types.js';

/** The facts of an upload record the store needs (a record row has them). */
export interface TusInfoRecord {
  size: number | null;
  tusMetadata: Record<string, string | null> | null;
  createdAt: Date;
}

/** The record of an upload whose bytes are in the store, or undefined. */
export type TusInfoLookup = (uploadId: string) => Promise<TusInfoRecord | undefined>;

export class RecordTusInfo implements KvStore<Upload> {
  private readonly files: FileKvStore<Upload>;
  // What get read from a `.json`, so that setting it back writes the `.json`.
  private readonly fromFile = new WeakSet<Upload>();

  constructor(
    directory: string,
    private readonly lookup: TusInfoLookup,
  ) {
    this.files = new FileKvStore<Upload>(directory);
  }

  async get(id: string): Promise<Upload | undefined> {
    // Created without a length, or before records held it: its `.json`.
    const file = await this.files.get(id);
    if (file) {
      this.fromFile.add(file);
      return file;
    }
    const record = await this.lookup(id);
    if (!record || record.size === null) return undefined;
    return new Upload({
      id,
      size: record.size,
      offset: 0,
      metadata: (record.tusMetadata ?? {}) as Upload['metadata'],
      creation_date: record.createdAt.toISOString(),
    });
  }

  async set(id: string, upload: Upload): Promise<void> {
    // A creation with its length: the record says it. Otherwise a creation without one, or the
    // declared length of such an upload (FileStore reads it with get and sets what it read).
    if (upload.size !== undefined && !this.fromFile.has(upload) && inJsonbOrder(upload.metadata ?? {})) return;
    await this.files.set(id, upload);
  }

  async delete(id: string): Promise<void> {
    await this.files.delete(id).catch((error: unknown) => {
      if (!isMissingFile(error)) throw error;
    });
  }
}

/** jsonb keeps an object's keys shortest first, then by their bytes: are these already so? */
export function inJsonbOrder(metadata: Record<string, unknown>): boolean {
  let previous: Buffer | null = null;
  for (const key of Object.keys(metadata)) {
    const bytes = Buffer.from(key);
    if (previous && (previous.length > bytes.length || (previous.length === bytes.length && Buffer.compare(previous, bytes) >= 0))) return false;
    previous = bytes;
  }
  return true;
}
