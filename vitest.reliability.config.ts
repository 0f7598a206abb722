// The reliability suite (`npm run test:reliability`): crashes, flaky networks, worker crashes,
// database restarts, storage outages and hostile input, against real child processes. Sized for
// CI by default; RELIABILITY_SCALE=full runs the full sizes of the issue (much longer).
import { defineConfig } from 'vitest/config';

const full = process.env.RELIABILITY_SCALE === 'full';

export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    testTimeout: full ? 30 * 60_000 : 4 * 60_000,
    hookTimeout: 3 * 60_000,
    // Each file runs servers, databases and fault injection of its own: one file at a time.
    fileParallelism: false,
    maxWorkers: 1,
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default'],
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
