// Durable progress of a write in flight: the stores tell how many of an upload's bytes are safe
// (fdatasynced to disk, or in a completed multipart part) while a body is still arriving, so the
// endpoint can announce an offset a client may drop its buffered bytes on (the IETF draft's
// progress 104s). Only ids and offsets: nothing of records or protocols.

/** Told the upload's offset that a crash of this process can no longer take back. */
export type DurableProgressListener = (offset: number) => void;

// One write per upload at a time (the upload lock), so one listener per upload id; ids are
// random, so one map serves every store of the process.
const listeners = new Map<string, DurableProgressListener>();

/** Listens to the durable progress of the write about to start on `uploadId`; returns the stop. */
export function listenDurableProgress(uploadId: string, listener: DurableProgressListener): () => void {
  listeners.set(uploadId, listener);
  return () => {
    if (listeners.get(uploadId) === listener) listeners.delete(uploadId);
  };
}

/** A store's report: bytes [0, offset) of `uploadId` are durable. */
export function reportDurableProgress(uploadId: string, offset: number): void {
  const listener = listeners.get(uploadId);
  if (!listener) return;
  try {
    listener(offset);
  } catch {
    // A listener's failure (a connection gone) is no failure of the write.
  }
}
