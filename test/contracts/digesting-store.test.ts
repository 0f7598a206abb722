// The DataStore contract (datastore.contract.ts) on the store @tus/server is given: the disk store
// behind the digest-on-arrival wrapper (src/storage/digesting-store.ts) keeps every promise of
// the store it wraps, interrupted bodies included, whether it hashes here or on a hashing thread.
import { ArrivalDigests, withArrivalDigests } from '../../src/storage/digesting-store.js';
import { HashThreads } from '../../src/storage/hash-thread.js';
import { fileBackend, MiB, S3_TEST_PART_SIZE } from '../support/storage-backends.js';
import { dataStoreContract } from './datastore.contract.js';

dataStoreContract('file, digesting on arrival', async () => {
  const backend = await fileBackend();
  return {
    ...backend,
    storage: withArrivalDigests(backend.storage, new ArrivalDigests()),
    breakSizes: { first: MiB, sent: S3_TEST_PART_SIZE + MiB / 2 },
    offsetAfterBreak: (acknowledged, sent) => acknowledged + sent,
  };
});

dataStoreContract('file, digesting on arrival on a hashing thread', async () => {
  const backend = await fileBackend();
  // Every upload declared longer than 1 KiB goes to the thread; small bounds make writes wait.
  const hashThreads = new HashThreads({ batchBytes: 64 * 1024, maxInFlightPerUpload: 128 * 1024, maxInFlight: 256 * 1024 });
  return {
    ...backend,
    storage: withArrivalDigests(backend.storage, new ArrivalDigests({ headsUpTo: 1024, hashThreads })),
    breakSizes: { first: MiB, sent: S3_TEST_PART_SIZE + MiB / 2 },
    offsetAfterBreak: (acknowledged, sent) => acknowledged + sent,
    close: async () => {
      await hashThreads.stop();
      await backend.close();
    },
  };
});
