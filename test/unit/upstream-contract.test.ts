// What we rely on in @tus/server, @tus/file-store and @tus/s3-store, pinned to exact versions in
// package.json: an upgrade that changes any of it fails here, before it reaches a request.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryLocker, Server } from '@tus/server';
import { FileStore } from '@tus/file-store';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const json = (file: string) => JSON.parse(readFileSync(path.join(root, file), 'utf8')) as { version: string; dependencies: Record<string, string> };
const pinned = json('package.json');

describe('upstream contract', () => {
  it.each(['@tus/server', '@tus/file-store', '@tus/s3-store', '@tus/utils'])('%s is the pinned version', (name) => {
    const installed = json(`node_modules/${name}/package.json`).version;
    expect(pinned.dependencies[name]).toBe(installed);
  });

  const server = new Server({
    path: '/files',
    datastore: new FileStore({ directory: '/tmp/tusvault-upstream-contract' }),
    locker: new MemoryLocker(),
    getFileIdFromRequest: () => 'a'.repeat(32),
    maxSize: () => 1234,
  });
  type Handler = {
    getFileIdFromRequest(req: Request): string | undefined;
    getConfiguredMaxSize(req: Request, id: string): number | Promise<number>;
    send: unknown;
    writeToStore: unknown;
  };

  it('asks getFileIdFromRequest for the id of every handler, whatever the URL says', () => {
    for (const method of ['HEAD', 'PATCH', 'DELETE'] as const) {
      const handler = server.handlers[method] as unknown as Handler;
      for (const url of ['http://x/files/' + 'b'.repeat(32), 'http://x/files?/' + 'c'.repeat(32), 'http://x/files']) {
        expect(handler.getFileIdFromRequest(new Request(url, { method: 'HEAD' }))).toBe('a'.repeat(32));
      }
    }
  });

  it('asks the maxSize function per request (the body limit of an upload of unknown length)', async () => {
    const handler = server.handlers.PATCH as unknown as Handler;
    expect(await handler.getConfiguredMaxSize(new Request('http://x/files/a'), 'a')).toBe(1234);
  });

  it('has the handler classes the body path subclasses, whose send stores through writeToStore (src/tus/body.ts)', () => {
    for (const method of ['PATCH', 'POST'] as const) {
      const prototype = Object.getPrototypeOf(server.handlers[method]) as Handler;
      expect(typeof prototype.writeToStore).toBe('function');
      // The override in the subclass only takes effect if send calls it through `this`.
      expect(String(prototype.send)).toContain('this.writeToStore(');
    }
  });
});
