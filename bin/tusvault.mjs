#!/usr/bin/env node
// `tusvault <command>` (package.json bin; `npx tusvault`): the command line in src/cli, run from
// the TypeScript sources through tsx as `npm start` does, or from dist/ in a built image.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const source = new URL('../src/cli/main.ts', import.meta.url);
let entry;
if (existsSync(fileURLToPath(source))) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = source.href;
} else {
  entry = new URL('../dist/src/cli/main.js', import.meta.url).href;
  if (!existsSync(built)) throw new Error('tusvault: neither src/cli/main.ts nor dist/src/cli/main.js is here');
}
const { main } = await import(entry);
await main();
