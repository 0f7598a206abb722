/**
 * Sequential reads over a byte stream: take the next n bytes, or skip them, holding no more than
 * the chunk in hand plus what was asked for. Pure: an async iterable of chunks in, bytes out.
 */
export class ByteCursor {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private chunk: Uint8Array = new Uint8Array(0);
  private at = 0;
  /** Bytes consumed so far (taken or skipped). */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Fills the chunk in hand; false at the end of the stream. */
  private async refill(): Promise<boolean> {
    while (this.at >= this.chunk.length) {
      const next = await this.iterator.next();
      if (next.done) return false;
      this.chunk = next.value;
      this.at = 0;
    }
    return true;
  }

  /** The next `length` bytes; fewer only when the stream ends first. */
  async take(length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length && (await this.refill())) {
      const n = Math.min(length - filled, this.chunk.length - this.at);
      out.set(this.chunk.subarray(this.at, this.at + n), filled);
      this.at += n;
      filled += n;
    }
    this.position += filled;
    return filled === length ? out : out.subarray(0, filled);
  }

  /** Skips `length` bytes; returns how many were there to skip. */
  async skip(length: number): Promise<number> {
    let skipped = 0;
    while (skipped < length && (await this.refill())) {
      const n = Math.min(length - skipped, this.chunk.length - this.at);
      this.at += n;
      skipped += n;
    }
    this.position += skipped;
    return skipped;
  }

  /** Stops reading the source (a stream is destroyed by its iterator's return). */
  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}
