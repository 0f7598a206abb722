// A TCP proxy on loopback that misbehaves on demand, the way a mobile network or a storage
// endpoint does: it cuts connections after a number of bytes, stalls all traffic, slows to modem
// speed, or goes away altogether (connections refused) for a while. Tests drive one fault at a
// time, or let `chaos()` run episodes of them between calm periods. Randomness comes from a
// seeded generator, so a failing run can be replayed with the seed it prints.
import net from 'node:net';

export type Range = readonly [min: number, max: number];

/** mulberry32: a small seeded PRNG (tests need reproducible, not cryptographic, randomness). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ProxyStats {
  connections: number;
  /** Bytes forwarded client → target and target → client. */
  bytesUp: number;
  bytesDown: number;
  cuts: number;
  refused: number;
}

export interface ChaosOptions {
  /** Quiet time between episodes, ms. */
  calmMs?: Range;
  /** Each connection open during a cut episode (or opened in it) is cut after this many more bytes. */
  cutAfterBytes?: Range;
  /** How long a cut episode keeps cutting new connections, ms. */
  cutEpisodeMs?: Range;
  /** How long all traffic stops, ms. */
  stallMs?: Range;
  /** The link's speed outside slow spells (bytes per second per direction of each connection). */
  baseBytesPerSecond?: number | null;
  /** Modem speed, bytes per second per direction of each connection, and for how long. */
  slowBytesPerSecond?: number;
  slowMs?: Range;
  /** Relative weights of the episode kinds. */
  weights?: { cut: number; stall: number; slow: number };
}

export interface Chaos {
  /** The episodes so far, e.g. "cut", "stall 1800ms", "slow 2200ms". */
  readonly episodes: string[];
  stop(): Promise<void>;
}

const TICK_MS = 50;
const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class Connection {
  /** Bytes forwarded in both directions. */
  bytes = 0;
  cutAt: number | null = null;
  closed = false;

  constructor(
    readonly proxy: FlakyProxy,
    readonly client: net.Socket,
    readonly upstream: net.Socket,
  ) {}

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    // An abrupt cut (RST), as a dropped radio link or a dead middlebox looks to both ends.
    for (const socket of [this.client, this.upstream]) {
      if (socket.destroyed) continue;
      try {
        if (socket.readyState !== 'opening') socket.resetAndDestroy();
        else socket.destroy();
      } catch {
        socket.destroy();
      }
    }
    this.proxy.forget(this);
  }

  cutAfter(bytes: number): void {
    const at = this.bytes + Math.max(0, Math.floor(bytes));
    this.cutAt = this.cutAt === null ? at : Math.min(this.cutAt, at);
  }
}

/** One direction of a connection: a queue pumped with the proxy's current faults applied. */
class Lane {
  private queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private pumping = false;

  constructor(
    private readonly connection: Connection,
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly direction: 'up' | 'down',
  ) {
    from.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      this.queued += chunk.length;
      if (this.queued > HIGH_WATER) from.pause();
      void this.pump();
    });
    from.on('end', () => {
      this.ended = true;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const proxy = this.connection.proxy;
    try {
      while (this.queue.length > 0 && !this.connection.closed) {
        const now = Date.now();
        if (proxy.stalledUntil > now) {
          await sleep(Math.min(proxy.stalledUntil - now, TICK_MS));
          continue;
        }
        let budget = proxy.rate === null ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor((proxy.rate * TICK_MS) / 1000));
        const cutAt = this.connection.cutAt;
        if (cutAt !== null) budget = Math.min(budget, cutAt - this.connection.bytes);
        if (budget <= 0) {
          proxy.stats.cuts++;
          this.connection.destroy();
          return;
        }
        const head = this.queue[0]!;
        const piece = head.length <= budget ? head : head.subarray(0, budget);
        if (piece === head) this.queue.shift();
        else this.queue[0] = head.subarray(budget);
        this.queued -= piece.length;
        if (this.queued < LOW_WATER && this.from.isPaused()) this.from.resume();
        if (this.to.destroyed) return;
        const flushed = this.to.write(piece);
        this.connection.bytes += piece.length;
        if (this.direction === 'up') proxy.stats.bytesUp += piece.length;
        else proxy.stats.bytesDown += piece.length;
        if (!flushed && !this.to.destroyed) {
          await new Promise<void>((resolve) => {
            const done = () => {
              this.to.off('drain', done);
              this.to.off('close', done);
              resolve();
            };
            this.to.on('drain', done);
            this.to.on('close', done);
          });
        }
        if (proxy.rate !== null) await sleep(TICK_MS);
      }
      if (this.ended && this.queue.length === 0 && !this.to.destroyed) this.to.end();
    } finally {
      this.pumping = false;
    }
    // Data that arrived while the last write was draining.
    if (this.queue.length > 0 && !this.connection.closed) void this.pump();
  }
}

export class FlakyProxy {
  /** Bytes per second per direction of each connection; null = as fast as it goes. */
  rate: number | null = null;
  stalledUntil = 0;
  readonly stats: ProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0, cuts: 0, refused: 0 };
  readonly random: () => number;
  private readonly connections = new Set<Connection>();
  private server: net.Server | null = null;
  /** While set, every new connection is cut after a random byte count in this range. */
  private cutNew: Range | null = null;

  private constructor(
    readonly target: { host: string; port: number },
    readonly port: number,
    readonly seed: number,
  ) {
    this.random = seededRandom(seed);
  }

  /** Starts a proxy to `target` on 127.0.0.1 (`port` 0: any free port). */
  static async start(target: { host: string; port: number }, options: { port?: number; seed?: number } = {}): Promise<FlakyProxy> {
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
    const proxy = new FlakyProxy(target, options.port ?? 0, seed);
    const port = await proxy.listen(options.port ?? 0);
    (proxy as { port: number }).port = port;
    return proxy;
  }

  /** A proxy to the host and port of a URL, e.g. an S3 endpoint. */
  static async to(url: string, options: { port?: number; seed?: number } = {}): Promise<FlakyProxy> {
    const parsed = new URL(url);
    return FlakyProxy.start({ host: parsed.hostname, port: Number(parsed.port) }, options);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** Random number in [min, max). */
  between([min, max]: Range): number {
    return min + this.random() * (max - min);
  }

  private listen(port: number): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  private accept(client: net.Socket): void {
    this.stats.connections++;
    client.setNoDelay(true);
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    upstream.setNoDelay(true);
    const connection = new Connection(this, client, upstream);
    this.connections.add(connection);
    if (this.cutNew) connection.cutAfter(this.between(this.cutNew));
    new Lane(connection, client, upstream, 'up');
    new Lane(connection, upstream, client, 'down');
    const onClose = (hadError: boolean) => {
      // An error on one side (reset, refused) takes the other side down at once; a clean close
      // lets the other lane flush first (its 'end' already ended the other side).
      if (hadError) connection.destroy();
      else if (client.destroyed && upstream.destroyed) this.forget(connection);
    };
    client.on('error', () => connection.destroy());
    upstream.on('error', () => connection.destroy());
    client.on('close', onClose);
    upstream.on('close', onClose);
  }

  /** @internal */
  forget(connection: Connection): void {
    this.connections.delete(connection);
  }

  // ---- faults -------------------------------------------------------------------------------

  /** Throttles every connection to `bytesPerSecond` per direction (null: full speed). */
  throttle(bytesPerSecond: number | null): void {
    this.rate = bytesPerSecond;
  }

  /** Stops all traffic for `ms` (connections stay open). */
  stall(ms: number): void {
    this.stalledUntil = Math.max(this.stalledUntil, Date.now() + ms);
  }

  /** Cuts every open connection now. */
  cutAll(): void {
    for (const connection of [...this.connections]) {
      this.stats.cuts++;
      connection.destroy();
    }
  }

  /** Cuts each open connection after a random number of further bytes in `range`. */
  cutOpenAfter(range: Range): void {
    for (const connection of this.connections) connection.cutAfter(this.between(range));
  }

  /** While on, new connections are cut after a random number of bytes in `range`. */
  cutNewAfter(range: Range | null): void {
    this.cutNew = range;
  }

  /** The endpoint goes away: open connections are cut and new ones refused until `restore()`. */
  async outage(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.cutAll();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port after `outage()`. */
  async restore(): Promise<void> {
    if (this.server) return;
    await this.listen(this.port);
  }

  get isDown(): boolean {
    return this.server === null;
  }

  /**
   * Runs fault episodes until stopped: a calm period, then a cut (connections dropped at random
   * byte counts), a stall or a slow spell, and so on. Faults are cleared when it stops.
   */
  chaos(options: ChaosOptions = {}): Chaos {
    const calm = options.calmMs ?? [300, 1500];
    const cutAfter = options.cutAfterBytes ?? [4 * 1024, 1024 * 1024];
    const cutFor = options.cutEpisodeMs ?? [300, 1200];
    const stallFor = options.stallMs ?? [500, 2500];
    const baseRate = options.baseBytesPerSecond ?? null;
    const slowRate = options.slowBytesPerSecond ?? 7_000; // 56 kbit/s
    const slowFor = options.slowMs ?? [500, 2500];
    const weights = options.weights ?? { cut: 2, stall: 1, slow: 1 };
    const total = weights.cut + weights.stall + weights.slow;
    const episodes: string[] = [];
    let stopped = false;
    let wake: (() => void) | null = null;
    const pause = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = null;
          resolve();
        }
        wake = done;
      });

    this.throttle(baseRate);
    const loop = (async () => {
      while (!stopped) {
        await pause(this.between(calm));
        if (stopped) break;
        const pick = this.random() * total;
        if (pick < weights.cut) {
          episodes.push('cut');
          this.cutOpenAfter(cutAfter);
          this.cutNewAfter(cutAfter);
          await pause(this.between(cutFor));
          this.cutNewAfter(null);
        } else if (pick < weights.cut + weights.stall) {
          const ms = Math.round(this.between(stallFor));
          episodes.push(`stall ${ms}ms`);
          this.stall(ms);
          await pause(ms);
        } else {
          const ms = Math.round(this.between(slowFor));
          episodes.push(`slow ${ms}ms`);
          this.throttle(slowRate);
          await pause(ms);
          this.throttle(baseRate);
        }
      }
    })();

    return {
      episodes,
      stop: async () => {
        stopped = true;
        (wake as (() => void) | null)?.();
        await loop;
        this.cutNewAfter(null);
        this.throttle(null);
        this.stalledUntil = 0;
        for (const connection of this.connections) connection.cutAt = null;
      },
    };
  }

  async close(): Promise<void> {
    await this.outage();
  }
}
