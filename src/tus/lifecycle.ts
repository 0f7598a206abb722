// What the upload endpoint asks of the upload lifecycle (hooks/): the decisions about a request
// (may it act on this upload, what does it hold in the quota), creation and finishing. The
// endpoint owns the wire protocol and knows nothing of records; the lifecycle owns the records and
// knows nothing of the wire. The composition root (src/start.ts) wires one to the other.
import type { Upload } from '@tus/utils';
import type { Principal } from '../auth/principal.js';
import type { UploadRow } from '../db/schema.js';

/** A HEAD, PATCH or DELETE on one upload, as the endpoint understood it. */
export interface IncomingRequest {
  method: string;
  uploadId: string;
  principal: Principal;
  /** Upload-Length sent on a PATCH (declaring a deferred length). */
  uploadLength: string | null;
  /** A PATCH's Upload-Offset (validated) and Content-Length (null for a chunked body). */
  uploadOffset?: number;
  contentLength?: number | null;
}

export type IncomingDecision =
  | {
      /** Hand the request to @tus/server, acting on `upload` only. */
      action: 'continue';
      upload: UploadRow;
      /** For a PATCH to an upload of unknown length: where its bytes must end (what is reserved). */
      maxEnd?: number;
    }
  | {
      /** Answer from the record: @tus/server does not see the request. */
      action: 'respond';
      status: number;
      headers: Record<string, string>;
      /** Stored objects the caller removes after answering (the last reference went). */
      removeObjects?: string[];
    };

/** `Upload-Concat: final;…` (tus concatenation), which @tus/server does not implement. */
export interface FinalRequest {
  principal: Principal;
  /** The Upload-Concat header, as received. */
  concat: string;
  urls: string[];
  metadata: string | null;
}

export interface UploadLifecycle {
  /** Ownership, status and quota for a request on an existing upload. */
  incoming(request: IncomingRequest): Promise<IncomingDecision>;
  createFinal(request: FinalRequest): Promise<{ id: string; expiresAt: Date }>;
  /** Every byte is stored: the upload goes to processing (idempotent). */
  finish(uploadId: string, offset: number, partial: boolean): Promise<void>;
  /** After a PATCH to an upload of unknown length: it holds what was stored, no more. */
  settleArrivedBytes(uploadId: string, storedOffset: number): Promise<void>;
  /** Activity moves an unfinished upload's expiry. */
  touch(uploadId: string, expiresAt: Date): Promise<void>;
  /** A creation that failed after its record was made: the record goes; returns objects to remove. */
  discardFailedCreation(uploadId: string): Promise<string[]>;
  /** @tus/server's own hooks. */
  onUploadCreate(req: Request, upload: Upload): Promise<{ metadata?: Upload['metadata'] }>;
  onUploadFinish(req: Request, upload: Upload): Promise<Record<string, never>>;
}
