// Human-friendly sizes and durations for configuration values.
// Decimal units (KB, MB, GB, TB) are powers of 1000 and binary units (KiB, MiB, GiB, TiB) powers
// of 1024, as on every disk label; a bare number is bytes (sizes) or milliseconds (durations).

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const NUMBER_WITH_UNIT = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

function parseWithUnits(text: string, units: Record<string, number>, bareUnit: string): number | null {
  const match = NUMBER_WITH_UNIT.exec(text);
  if (!match) return null;
  const [, amount, unit] = match;
  const factor = units[(unit || bareUnit).toLowerCase()];
  if (factor === undefined) return null;
  const value = Math.round(Number(amount) * factor);
  return Number.isSafeInteger(value) ? value : null;
}

/** `500MB` → 500000000, `5GiB` → 5368709120, `1024` → 1024; null when not a size. */
export function parseSize(text: string): number | null {
  return parseWithUnits(text, SIZE_UNITS, 'b');
}

/** `24h` → 86400000, `7d`, `30s`, `250ms`, `1500` (ms); null when not a duration. */
export function parseDuration(text: string): number | null {
  return parseWithUnits(text, DURATION_UNITS, 'ms');
}

/** Bytes as a short human string for messages: 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1).replace(/\.0$/, '')} ${units[unit]}`;
}
