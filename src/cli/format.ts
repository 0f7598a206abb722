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
