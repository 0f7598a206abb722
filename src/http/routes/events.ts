// Server-Sent Events: live progress and status of one file, or of all of an owner's files.
// Events: `snapshot` (the file record, plus `offset` while uploading), `progress` ({id, offset,
// size}) while bytes arrive (also when another server process receives them), `status` (the
// fresh record) on every status change. A single-file stream ends after a final status, except
// for an archived file without a restored copy: it ends after `restored` (the record, readable again).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { findOwnedFile } from '../../db/files.js';
import { FINAL_STATUSES, type UploadStatus } from '../../db/schema.js';
import { notFound } from '../../errors.js';
import type { UploadEvents } from '../../events/upload-events.js';
import type { ObjectStorage } from '../../storage/types.js';
import { toFileRecord } from '../file-record.js';
import { errorResponses, FileIdParams, UploadId } from '../schemas.js';

export interface EventsRoutesOptions {
  db: Db;
  storage: ObjectStorage;
  events: UploadEvents;
}

const HEARTBEAT_MS = 15_000;

/** A ready file whose bytes are archived and not restored: its stream waits for `restored`. */
const awaitsRestore = (record: { storageTier: string; restoredUntil: string | null }) =>
  record.storageTier === 'archive' && (record.restoredUntil === null || Date.parse(record.restoredUntil) <= Date.now());

/** Opens an event stream on the raw response; returns a writer and a close hook. */
function openStream(request: FastifyRequest, reply: FastifyReply) {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // Proxies such as nginx must not buffer the stream.
    'X-Accel-Buffering': 'no',
  });
  raw.write('retry: 3000\n\n');
  let closed = false;
  const cleanups: Array<() => void> = [];
  const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS);
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    for (const cleanup of cleanups) cleanup();
    raw.end();
  };
  request.raw.on('close', close);
  return {
    send(event: string, data: unknown) {
      if (!closed) raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    onClose(cleanup: () => void) {
      cleanups.push(cleanup);
    },
    close,
  };
}

export const eventsRoutes: FastifyPluginAsync<EventsRoutesOptions> = async (plugin, { db, storage, events }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();

  async function snapshot(id: string, ownerId: string) {
    const row = await findOwnedFile(db, id, ownerId);
    if (!row) return null;
    const record = toFileRecord(row);
    if (record.status !== 'uploading') return { ...record, offset: record.size };
    const offset = await storage.tusStore
      .getUpload(id)
      .then((u) => u.offset)
      .catch(() => 0);
    return { ...record, offset };
  }

  app.get(
    '/files/:id/events',
    {
      schema: {
        tags: ['files'],
        summary: 'Server-Sent Events: upload progress and status changes of one file until it is final',
        params: FileIdParams,
        response: { 200: z.any().describe('text/event-stream'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { ownerId } = request.principal;
      if (!UploadId.safeParse(id).success || !(await findOwnedFile(db, id, ownerId))) throw notFound('file');
      const stream = openStream(request, reply);
      // Subscribe before reading the snapshot, so no change falls in between.
      let chain = Promise.resolve();
      stream.onClose(
        events.onUpload(id, (event) => {
          if (event.type === 'progress') {
            stream.send('progress', { id, offset: event.offset, size: event.size });
            return;
          }
          chain = chain.then(async () => {
            const record = await snapshot(id, ownerId);
            // Changes committed together (a small file settled as it finished) notify together:
            // the record already shows the later one, whose own notice follows.
            if (record && record.status !== event.status) return;
            stream.send(event.type === 'restored' ? 'restored' : 'status', record ?? { id, status: event.status });
            if (!record || (FINAL_STATUSES.includes(event.status as UploadStatus) && !awaitsRestore(record))) stream.close();
          });
        }),
      );
      const first = await snapshot(id, ownerId);
      if (!first) return stream.close();
      stream.send('snapshot', first);
      if (FINAL_STATUSES.includes(first.status) && !awaitsRestore(first)) stream.close();
    },
  );

  app.get(
    '/events',
    {
      schema: {
        tags: ['files'],
        summary: 'Server-Sent Events for all of your files (progress and status changes), for live lists',
        response: { 200: z.any().describe('text/event-stream'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { ownerId } = request.principal;
      const stream = openStream(request, reply);
      let chain = Promise.resolve();
      stream.onClose(
        events.onOwner(ownerId, (event) => {
          if (event.type === 'progress') {
            stream.send('progress', { id: event.id, offset: event.offset, size: event.size });
            return;
          }
          chain = chain.then(async () => {
            const row = await findOwnedFile(db, event.id, ownerId);
            // As for one file: a notice the record has moved past is followed by the newer one's.
            if (row && row.upload.status !== event.status) return;
            stream.send('status', row ? toFileRecord(row) : { id: event.id, status: event.status });
          });
        }),
      );
      stream.send('ready', { ownerId });
    },
  );
};
