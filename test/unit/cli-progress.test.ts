// The command line's progress for long operations (src/cli/format.ts withProgress): on stderr, a
// line at the start, "still running" lines while the operation runs, and how it ended.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { withProgress } from '../../src/cli/format.js';

describe('withProgress', () => {
  const lines: string[] = [];
  const capture = () =>
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      return true;
    });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
    lines.length = 0;
  });

  it('says it started, that it is still running while it runs, and how it ended', async () => {
    vi.useFakeTimers();
    capture();
    let finish!: (n: number) => void;
    const running = withProgress('sweeping', () => new Promise<number>((resolve) => (finish = resolve)), (n) => `${n} removed`, 5000);
    expect(lines).toEqual(['sweeping …']);
    await vi.advanceTimersByTimeAsync(12_000);
    expect(lines).toEqual(['sweeping …', 'sweeping … still running (5.0 s)', 'sweeping … still running (10.0 s)']);
    finish(3);
    expect(await running).toBe(3);
    expect(lines.at(-1)).toBe('sweeping: done in 12.0 s — 3 removed');
    await vi.advanceTimersByTimeAsync(20_000);
    expect(lines).toHaveLength(4);
  });

  it('says it failed, stops ticking and passes the error on', async () => {
    vi.useFakeTimers();
    capture();
    await expect(withProgress('reconciling', () => Promise.reject(new Error('database gone')), undefined, 5000)).rejects.toThrow('database gone');
    expect(lines).toEqual(['reconciling …', 'reconciling: failed after 0.0 s']);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(lines).toHaveLength(2);
  });
});
