// Group commit in the application: calls that arrive while earlier ones are still in the database
// go together, as one statement and one commit, when those finish.
//
// Each creation and each finished upload is one small statement, and with many uploads at once
// much of PostgreSQL's CPU per statement is overhead rather than work: executor start-up, the
// commit and its WAL flush, the NOTIFYs and, above all, every creation of one owner updating that
// owner's quota row, which makes concurrent creations queue on its row lock. Batching pays those
// once per batch. The price is latency, bounded: a call that finds fewer than `maxInFlight`
// batches in the database goes at once, alone; any other waits for one of them to finish (a
// millisecond or two under load) and goes with the next batch.
//
// A batch that fails is retried one call at a time, so one bad call (a constraint it breaks, a
// limit it hits) gets its own precise error and never fails the others with it.

export interface CoalesceOptions {
  /** The most calls in one batch. */
  maxBatch: number;
  /** Batches (or single calls) in the database at the same time. */
  maxInFlight: number;
  /**
   * Whether a failed batch is worth retrying call by call. Not when the failure is not about the
   * calls (the database is down): each call would only wait for the same failure again.
   */
  retryAlone?: (error: unknown) => boolean;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (reason: unknown) => void;
}

/**
 * Returns a function that runs `many([item])` at once, or, while `maxInFlight` runs are in the
 * database, queues the item for the next `many(items)`. `many` must be one statement (all or
 * nothing) and return one result per item, in order.
 */
export function coalesce<I, O>(many: (items: I[]) => Promise<O[]>, options: CoalesceOptions): (item: I) => Promise<O> {
  const one = async (item: I): Promise<O> => {
    const [result] = await many([item]);
    return result as O;
  };
  const queue: Pending<I, O>[] = [];
  let inFlight = 0;

  async function runBatch(batch: Pending<I, O>[]): Promise<void> {
    if (batch.length === 1) {
      const [only] = batch as [Pending<I, O>];
      await one(only.item).then(only.resolve, only.reject);
      return;
    }
    let results: O[];
    try {
      results = await many(batch.map((pending) => pending.item));
    } catch (error) {
      if (options.retryAlone && !options.retryAlone(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // Whatever failed the batch (nothing of it was committed: `many` is one statement), each
      // call alone.
      await Promise.all(batch.map((pending) => one(pending.item).then(pending.resolve, pending.reject)));
      return;
    }
    if (results.length !== batch.length) {
      const error = new Error(`a batch of ${batch.length} calls returned ${results.length} results`);
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => pending.resolve(results[i]!));
  }

  function drain(): void {
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, options.maxBatch);
      inFlight++;
      void runBatch(batch).finally(() => {
        inFlight--;
        drain();
      });
    }
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      drain();
    });
}
