// Process entry point of the server: `tusvault serve` (src/cli/commands/serve.ts), for
// `node dist/src/main.js` in the image and tests that spawn the server.
import { main } from './cli/main.js';

void main(['serve', ...process.argv.slice(2)]);
