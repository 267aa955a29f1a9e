#!/usr/bin/env node
// Entry point of the `gapgrad` command: runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../cli/main.ts');
main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`gapgrad: ${e.message}\n`);
    if (process.env.GAPGRAD_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exit(e.constructor?.name === 'UsageError' ? 2 : 1);
  },
);
