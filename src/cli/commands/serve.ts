// `tusvault serve` (what `npm start` runs): the server, until SIGTERM/SIGINT.
//   first signal: graceful shutdown (stop accepting, let in-flight PATCH requests save what they
//   received, stop the worker cleanly, close the database), bounded by SHUTDOWN_TIMEOUT;
//   a second signal exits at once.
import { setFlagsFromString } from 'node:v8';
import { createLogger, isPretty } from '../../logger.js';
import { bannerFacts, bannerLines } from '../banner.js';
import { EXIT, parseCommandArgs, positionals, type Command } from '../command.js';
import { cliContext } from '../context.js';

const help = `Usage: tusvault serve

Starts the server for ROLE (all: API and worker; api; worker), configured from the environment
(see README.md, Configuration). SIGTERM or SIGINT shuts it down gracefully; a second one at once.`;

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

export const serveCommand: Command = {
  name: 'serve',
  help,
  async run(args) {
    positionals('serve', parseCommandArgs('serve', args, {}).positionals, []);
    tuneHeapGrowth();
    const { config } = cliContext();
    const logger = createLogger(config.logLevel, { role: config.role }, { format: config.logFormat });

    process.on('unhandledRejection', (reason) => {
      logger.error({ err: reason }, 'unhandled promise rejection');
    });

    let running;
    try {
      // Loaded here, not at the top: `tusvault serve --help` need not load the whole server.
      const { start } = await import('../../start.js');
      running = await start(config, logger);
    } catch (error) {
      logger.fatal({ err: error }, 'failed to start');
      return EXIT.failed;
    }
    const facts = bannerFacts(config, running.url);
    if (isPretty(config.logFormat)) process.stdout.write(`\n${bannerLines(config, facts).join('\n')}\n\n`);
    else logger.info(facts, 'tusvault is running');

    return new Promise<number>((resolve) => {
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          resolve(130);
          return;
        }
        stopping = true;
        logger.info({ signal }, 'shutting down gracefully (send the signal again to exit at once)');
        const timer = setTimeout(() => {
          logger.error('graceful shutdown took too long; exiting');
          resolve(EXIT.failed);
        }, config.shutdownTimeoutMs);
        timer.unref();
        running.stop().then(
          () => {
            logger.info('stopped');
            resolve(EXIT.ok);
          },
          (error: unknown) => {
            logger.error({ err: error }, 'error during shutdown');
            resolve(EXIT.failed);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
  },
};
