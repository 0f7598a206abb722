// Process entry point: configuration, logging, start, and signal handling.
//   first SIGTERM/SIGINT: graceful shutdown (stop accepting, let in-flight PATCH requests save
//   what they received, stop the worker cleanly, close the database), bounded by
//   SHUTDOWN_TIMEOUT; a second signal exits at once.
import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig } from './config/index.js';
import { createLogger } from './logger.js';
import { start } from './start.js';

/**
 * V8 sizes the old generation's next limit from how fast its last collections were, which for a
 * server that sat idle (its memory reducer shrinks the heap) and then receives at full speed comes
 * out barely above the live heap: every few MiB received then started concurrent marking again,
 * and those collections cost more CPU (V8's helper threads) than the upload itself
 * (bench/tools/thread-cpu.ts measures it). A fixed factor of 3 keeps room for a burst at the
 * price of a larger heap between collections; `node --heap-growing-percent=N` overrides it.
 */
function tuneHeapGrowth(): void {
  if (process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent\b/.test(flag))) return;
  setFlagsFromString('--heap-growing-percent=200');
}

async function main(): Promise<void> {
  tuneHeapGrowth();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, { role: config.role });

  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection');
  });

  let running;
  try {
    running = await start(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, 'failed to start');
    process.exit(1);
  }

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down gracefully (send the signal again to exit at once)');
    const timer = setTimeout(() => {
      logger.error('graceful shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    running.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

void main();
