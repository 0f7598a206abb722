// Live upload events across every server process, through PostgreSQL LISTEN/NOTIFY:
// - status changes come from a trigger on `uploads` (drizzle/0001_upload_events.sql);
// - progress (bytes received) is published by whichever process is receiving the PATCH.
// Each process holds one LISTEN connection and fans events out to its local subscribers.
import type postgres from 'postgres';
import type { Logger } from '../logger.js';

export const CHANNEL = 'upload_events';

export type UploadEvent =
  | { type: 'status'; id: string; ownerId: string; status: string }
  | { type: 'progress'; id: string; ownerId: string; offset: number; size: number | null }
  // An archived file's restored copy is readable (src/db/tiers.ts); status is 'ready'.
  | { type: 'restored'; id: string; ownerId: string; status: string };

type Listener = (event: UploadEvent) => void;

export class UploadEvents {
  private readonly byUpload = new Map<string, Set<Listener>>();
  private readonly byOwner = new Map<string, Set<Listener>>();
  private unlisten?: () => Promise<void>;

  constructor(
    private readonly sql: postgres.Sql,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const { unlisten } = await this.sql.listen(CHANNEL, (payload) => this.dispatch(payload));
    this.unlisten = unlisten;
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
  }

  private dispatch(payload: string): void {
    let event: UploadEvent;
    try {
      event = JSON.parse(payload) as UploadEvent;
    } catch {
      return;
    }
    for (const listener of [...(this.byUpload.get(event.id) ?? []), ...(this.byOwner.get(event.ownerId) ?? [])]) {
      try {
        listener(event);
      } catch (error) {
        this.logger.warn({ err: error }, 'upload event listener failed');
      }
    }
  }

  private add(map: Map<string, Set<Listener>>, key: string, listener: Listener): () => void {
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) map.delete(key);
    };
  }

  onUpload(id: string, listener: Listener): () => void {
    return this.add(this.byUpload, id, listener);
  }

  onOwner(ownerId: string, listener: Listener): () => void {
    return this.add(this.byOwner, ownerId, listener);
  }

  /** Fire and forget: progress is advisory, a lost notification is superseded by the next. */
  publishProgress(id: string, ownerId: string, offset: number, size: number | null): void {
    const event: UploadEvent = { type: 'progress', id, ownerId, offset, size };
    this.sql`select pg_notify(${CHANNEL}, ${JSON.stringify(event)})`.catch((error: unknown) =>
      this.logger.debug({ err: error }, 'could not publish upload progress'),
    );
  }
}
