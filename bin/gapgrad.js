#!/usr/bin/env node
// Entry point of the `gapgrad` command: runs the TypeScript CLI through tsx's loader.
// On Node 20 the CLI needs a V8 flag at start-up (relaxed SIMD for the matmul, see
// cli/node_flags.ts): without it, this script starts itself again with the flag and passes the
// exit status (and SIGINT/SIGTERM) through.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';
register();
const { missingNodeFlags } = await import('../cli/node_flags.ts');
const missing = missingNodeFlags();
if (missing.length > 0 && !process.env.GAPGRAD_REEXEC) {
  const child = spawn(process.execPath, [...process.execArgv, ...missing, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit', env: { ...process.env, GAPGRAD_REEXEC: '1' },
  });
  // signals sent to this pid are passed on (this process stays until the child has exited)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => { process.stderr.write(`gapgrad: could not start ${process.execPath}: ${e.message}\n`); process.exit(1); });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1, SIGKILL: 9 }[signal] ?? 1)));
} else {
  const { main } = await import('../cli/main.ts');
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`gapgrad: ${e.message}\n`);
      if (process.env.GAPGRAD_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exit(e.constructor?.name === 'UsageError' ? 2 : 1);
    },
  );
}
