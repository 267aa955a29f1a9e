#!/usr/bin/env node
// Entry point of the `gapgrad` command. An installed package runs its built JavaScript (dist/cli/main.js);
// a clone of the repository runs the TypeScript sources through tsx (a devDependency), so `npm start` needs
// no build step.
// On Node 20 the CLI needs a V8 flag at start-up (relaxed SIMD for the matmul, see cli/node_flags.ts):
// without it, this script starts itself again with the flag and passes the exit status (and
// SIGINT/SIGTERM) through.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const src = (p) => new URL(`../${p}.ts`, import.meta.url);
const built = (p) => new URL(`../dist/${p}.js`, import.meta.url);
let fromSource = existsSync(src('cli/main')) && process.env.GAPGRAD_USE_DIST !== '1';
if (fromSource) {
  try {
    const { register } = await import('tsx/esm/api');
    register();
  } catch {
    fromSource = false; // a checkout without its devDependencies: the build, if there is one
  }
}
const entry = (p) => {
  const u = fromSource ? src(p) : built(p);
  if (!existsSync(u)) {
    process.stderr.write(`gapgrad: ${fileURLToPath(u)} is missing; run 'npm install' (a clone) or 'npm run build'\n`);
    process.exit(1);
  }
  return u.href;
};

const { missingNodeFlags } = await import(entry('cli/node_flags'));
const missing = missingNodeFlags();
// --estimators modules written as a user would (import ... from 'gapgrad') resolve to the sources in a clone:
// Node takes the package's 'gapgrad-source' condition only from its command line
const SOURCE_CONDITION = '--conditions=gapgrad-source';
if (fromSource && process.argv.some((a) => a === '--estimators' || a.startsWith('--estimators=')) && !process.execArgv.includes(SOURCE_CONDITION)) missing.push(SOURCE_CONDITION);
if (missing.length > 0 && !process.env.GAPGRAD_REEXEC) {
  const child = spawn(process.execPath, [...process.execArgv, ...missing, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit', env: { ...process.env, GAPGRAD_REEXEC: '1' },
  });
  // signals sent to this pid are passed on (this process stays until the child has exited)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => { process.stderr.write(`gapgrad: could not start ${process.execPath}: ${e.message}\n`); process.exit(1); });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1, SIGKILL: 9 }[signal] ?? 1)));
} else {
  const { main } = await import(entry('cli/main'));
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`gapgrad: ${e.message}\n`);
      if (process.env.GAPGRAD_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exit(e.constructor?.name === 'UsageError' ? 2 : 1);
    },
  );
}
