// CLI: generate a ListOps split with the original recipe.
//   npx tsx models/listops/generate.ts OUT.tsv COUNT SEED [EXCLUDE.tsv ...]
// Expressions present in any EXCLUDE file are never produced.

import { pathToFileURL } from 'node:url';
import { writeGenerated } from './data.ts';

export function main(argv: readonly string[]): number {
  const [out, countStr, seedStr, ...exclude] = argv;
  const count = Number(countStr);
  const seed = Number(seedStr);
  if (!out || !Number.isInteger(count) || count < 0 || !Number.isInteger(seed)) {
    console.error('usage: generate.ts OUT.tsv COUNT SEED [EXCLUDE.tsv ...]');
    return 2;
  }
  const t0 = performance.now();
  const ex = writeGenerated(out, count, seed, exclude);
  const ms = performance.now() - t0;
  console.log(`wrote ${ex.length} examples to ${out} (seed ${seed}, ${exclude.length} exclude file(s)) in ${ms.toFixed(0)} ms`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
