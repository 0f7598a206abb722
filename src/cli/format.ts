// How commands print: one JSON document with --json (for scripts), readable text otherwise.
import { formatBytes } from '../config/units.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLines(lines: string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

/** Progress of a long operation: on stderr, so stdout stays the answer. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

const STILL_RUNNING_EVERY_MS = 5_000;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Runs a long operation with progress on stderr: a line when it starts, a "still running" line
 * every few seconds while it runs (so a slow sweep is not mistaken for a hang), and how it ended.
 */
export async function withProgress<T>(
  label: string,
  run: () => Promise<T>,
  summary?: (result: T) => string,
  everyMs = STILL_RUNNING_EVERY_MS,
): Promise<T> {
  const started = Date.now();
  progress(`${label} …`);
  const ticker = setInterval(() => progress(`${label} … still running (${seconds(Date.now() - started)})`), everyMs);
  try {
    const result = await run();
    progress(`${label}: done in ${seconds(Date.now() - started)}${summary ? ` — ${summary(result)}` : ''}`);
    return result;
  } catch (error) {
    progress(`${label}: failed after ${seconds(Date.now() - started)}`);
    throw error;
  } finally {
    clearInterval(ticker);
  }
}

export const bytes = (value: number | null | undefined): string => (value === null || value === undefined ? '-' : formatBytes(value));

/** Left-aligned columns, two spaces apart. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
