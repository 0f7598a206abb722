// The DataStore contract (datastore.contract.ts) on the store @tus/server is given: the disk store
// behind the digest-on-arrival wrapper (src/storage/digesting-store.ts) keeps every promise of
// the store it wraps, interrupted bodies included.
import { ArrivalDigests, withArrivalDigests } from '../../src/storage/digesting-store.js';
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
