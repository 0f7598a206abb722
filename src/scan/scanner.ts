// The virus scanner seam: bytes in, verdict out. The clamd implementation lives beside it.
import type { Readable } from 'node:stream';

export interface ScanVerdict {
  status: 'clean' | 'infected';
  signature: string | null;
}

/** The scanner cannot give a verdict (down, timing out): worth a retry. */
export class ScannerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ScannerUnavailableError';
  }
}

/** These bytes cannot be scanned at all (e.g. larger than clamd's stream limit): no retry. */
export class UnscannableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnscannableError';
  }
}

export interface Scanner {
  scan(stream: Readable, size: number): Promise<ScanVerdict>;
  ping(): Promise<void>;
}
