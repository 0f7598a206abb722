// The worker's start-up cleanup of ffmpeg's temporary directories (tasks/previews/ffmpeg-decoder.ts):
// only this decoder's own directories, only those older than an hour, files inside included.
import { access, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FFMPEG_TEMP_PREFIX, removeStaleFfmpegTemp } from '../../tasks/previews/ffmpeg-decoder.js';

describe('removeStaleFfmpegTemp', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tusvault-unit-tmp-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const exists = (p: string) => access(p).then(() => true, () => false);
  const make = async (name: string, ageMs: number, kind: 'dir' | 'file' = 'dir') => {
    const full = path.join(dir, name);
    if (kind === 'dir') {
      await mkdir(full);
      await writeFile(path.join(full, 'input.m4a'), 'bytes');
    } else {
      await writeFile(full, 'bytes');
    }
    const then = new Date(Date.now() - ageMs);
    await utimes(full, then, then);
    return full;
  };

  it('removes only its own directories older than an hour', async () => {
    expect(FFMPEG_TEMP_PREFIX).toBe('tusvault-ffmpeg-');
    const stale = await make(`${FFMPEG_TEMP_PREFIX}a1`, 2 * 3_600_000);
    const staler = await make(`${FFMPEG_TEMP_PREFIX}b2`, 30 * 3_600_000);
    const young = await make(`${FFMPEG_TEMP_PREFIX}c3`, 10 * 60_000);
    const foreign = await make('tusvault-test-old', 2 * 3_600_000);
    const plainFile = await make(`${FFMPEG_TEMP_PREFIX}file`, 2 * 3_600_000, 'file');

    expect((await removeStaleFfmpegTemp({ tempDir: dir })).sort()).toEqual([stale, staler].sort());
    expect([await exists(stale), await exists(staler)]).toEqual([false, false]);
    expect([await exists(young), await exists(foreign), await exists(plainFile)]).toEqual([true, true, true]);
    // Nothing left to remove: a second call is a no-op.
    expect(await removeStaleFfmpegTemp({ tempDir: dir })).toEqual([]);
  });

  it('takes the age limit and the clock from its caller', async () => {
    const tenMinutes = await make(`${FFMPEG_TEMP_PREFIX}x`, 10 * 60_000);
    expect(await removeStaleFfmpegTemp({ tempDir: dir, olderThanMs: 60_000 })).toEqual([tenMinutes]);
    const fresh = await make(`${FFMPEG_TEMP_PREFIX}y`, 0);
    expect(await removeStaleFfmpegTemp({ tempDir: dir, now: new Date(Date.now() + 2 * 3_600_000) })).toEqual([fresh]);
  });
});
