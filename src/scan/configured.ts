// The scanner the configuration asks for: clamd when CLAMAV_HOST or CLAMAV_SOCKET is set, none
// otherwise. The server and the command line build it here so they never disagree.
import type { Config } from '../config/index.js';
import { createClamdScanner } from './clamd.js';
import type { Scanner } from './scanner.js';

export function configuredScanner(config: Pick<Config, 'clamav'>): Scanner | null {
  const { host, port, socket, timeoutMs, maxStreamBytes } = config.clamav;
  if (!host && !socket) return null;
  return createClamdScanner({ host, port, socket, timeoutMs, maxStreamBytes });
}
