// User-defined estimators on the command line: `--estimators FILE[,FILE...]` loads modules that call
// estimators.define before any flag is checked, so that `--method NAME` (train, sweep, bench, the zoo
// report) accepts their methods. Also the flags every training command shares: --method (help from the
// registry), --tau-schedule.
import { resolve as resolvePath } from 'node:path';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { UsageError } from './args.ts';
import { methodsHelp } from '../estimators/registry.ts';

/** The estimator flags shared by train vae|listops, variance, sweep, bench and the report (help texts from the registry). */
export const ESTIMATOR_FLAGS = {
  estimators: { type: 'string', help: 'comma-separated modules (.ts or .js) that call estimators.define; their methods become valid --method names' },
} as const;

/** --method's flag spec (help from the registry, evaluated when printed, after --estimators modules are loaded). */
export function methodFlag(dflt: string): { type: 'string'; default: string; readonly help: string } {
  return { type: 'string', default: dflt, get help() { return `estimator: ${methodsHelp()}`; } };
}

/** --tau-schedule's flag spec. */
export const TAU_SCHEDULE_FLAG = {
  type: 'string',
  help: "temperature as a function of the training step, replacing --tau: 'exp:START:FLOOR:RATE' (τ = max(FLOOR, START·e^(−RATE·step)), Jang et al.), 'linear:START:END:STEPS' or 'const:TAU'",
} as const;

/** The values of every `--estimators X` / `--estimators=X` in argv (comma-separated lists split). */
export function estimatorPaths(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let v: string | undefined;
    if (a === '--estimators') {
      v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new UsageError('--estimators: expected a file (a module calling estimators.define), got nothing');
      i++;
    } else if (a.startsWith('--estimators=')) v = a.slice('--estimators='.length);
    if (v !== undefined) out.push(...v.split(',').map((s) => s.trim()).filter(Boolean));
  }
  return out;
}

const loaded = new Set<string>();

/**
 * Import each module (resolved against the working directory) once; each registers its estimators with
 * estimators.define. A missing file, or a module that fails to load, is a usage error naming it.
 * @param paths - module paths (.ts needs the CLI's TypeScript loader, which a clone of the repository has)
 * @returns the absolute paths loaded
 */
export async function loadEstimatorModules(paths: readonly string[]): Promise<string[]> {
  const abs: string[] = [];
  for (const p of paths) {
    const file = resolvePath(p);
    if (!existsSync(file)) throw new UsageError(`--estimators: no such file '${p}' (resolved to ${file})`);
    abs.push(file);
    if (loaded.has(file)) continue;
    try {
      await import(pathToFileURL(file).href);
    } catch (e) {
      throw new UsageError(`--estimators: loading '${p}' failed: ${(e as Error).message}`);
    }
    loaded.add(file);
  }
  return abs;
}

/** The Node flags a child process needs to load `--estimators` modules as this one does (the source condition). */
export function conditionFlags(): string[] {
  return process.execArgv.filter((a) => a.startsWith('--conditions=') || a.startsWith('-C='));
}
