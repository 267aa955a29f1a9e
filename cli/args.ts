// Flag parsing shared by the CLI commands: node:util parseArgs with a help text per flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { statSync } from 'node:fs';

export type Flags = Record<string, string | boolean | undefined>;
/** A command's flags: type, default and help text; `path`: the value names an existing file or folder, checked at parse
 *  time (a missing one is a usage error naming the flag). */
export type FlagSpec = Record<string, { type: 'string' | 'boolean'; default?: string | boolean; help: string; path?: 'file' | 'dir' }>;

/** A mistake in the command line: printed without a stack, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** `spec` with other defaults for some flags (a preset such as npm start's or --quick's); flags given explicitly still win. */
export function withDefaults(spec: FlagSpec, defaults: Partial<Flags>): FlagSpec {
  return Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, k in defaults ? { ...v, default: defaults[k] } : v]));
}

export function flagHelp(spec: FlagSpec): string {
  return Object.entries(spec).map(([k, v]) => `  --${k.padEnd(18)} ${v.help}${v.default !== undefined && v.default !== false ? ` (default ${v.default})` : ''}`).join('\n');
}

/** Parse args against spec; --help prints the usage and the flags and exits. */
export function parseFlags(args: string[], spec: FlagSpec, usage: string): Flags {
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const [k, v] of Object.entries(spec)) options![k] = { type: v.type, ...(v.default !== undefined ? { default: v.default } : {}) };
  let values: Flags;
  try {
    values = parseArgs({ args: joinNegativeValues(args, spec), options, allowPositionals: false, strict: true }).values as Flags;
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${usage}\n${flagHelp(spec)}`);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n\nFlags:\n${flagHelp(spec)}\n`);
    process.exit(0);
  }
  for (const [k, v] of Object.entries(spec)) {
    const p = values[k];
    if (v.path && typeof p === 'string') checkPath(k, p, v.path);
  }
  return values;
}

function checkPath(name: string, p: string, kind: 'file' | 'dir'): void {
  const st = statSync(p, { throwIfNoEntry: false });
  const what = kind === 'dir' ? 'folder' : 'file';
  if (!st) throw new UsageError(`--${name}: no such ${what} '${p}'`);
  if (kind === 'dir' ? !st.isDirectory() : !st.isFile()) throw new UsageError(`--${name}: '${p}' is not a ${what}`);
}

/** `--flag -1` as `--flag=-1` for string flags, so that a negative number reaches the flag's own check. */
function joinNegativeValues(args: string[], spec: FlagSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const m = /^--([^=]+)$/.exec(args[i]);
    if (m && spec[m[1]]?.type === 'string' && i + 1 < args.length && /^-(\d|\.\d|Infinity|NaN)/.test(args[i + 1])) {
      out.push(`${args[i]}=${args[++i]}`);
    } else out.push(args[i]);
  }
  return out;
}

/** Run a check whose errors name the flag (a model's config validation): they become usage errors (exit 2). */
export function asUsage<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError((e as Error).message);
  }
}

/** An integer flag of at least `min`; anything else is a UsageError naming the flag, the value and what is allowed. */
export function intFlag(f: Flags, name: string, min: number): number {
  const v = numFlag(f, name);
  if (!Number.isSafeInteger(v) || v < min) throw new UsageError(`--${name}: expected an integer >= ${min}, got '${f[name]}'`);
  return v;
}

/** A comma-separated list of numbers, each checked by `ok` (described by `allowed`). */
export function numListFlag(f: Flags, name: string, ok: (v: number) => boolean, allowed: string): number[] {
  const parts = String(f[name] ?? '').split(',');
  const vs = parts.map((p) => (p.trim() === '' ? NaN : Number(p)));
  const bad = parts.find((p, i) => !Number.isFinite(vs[i]) || !ok(vs[i]));
  if (bad !== undefined) throw new UsageError(`--${name}: expected comma-separated ${allowed}, got '${bad}' in '${f[name]}'`);
  return vs;
}

/** A numeric flag; a missing or non-numeric value is a UsageError naming the flag. */
export function numFlag(f: Flags, name: string): number {
  const v = Number(f[name]);
  if (f[name] === undefined || f[name] === '' || !Number.isFinite(v)) throw new UsageError(`--${name}: expected a number, got '${f[name]}'`);
  return v;
}

export function optNumFlag(f: Flags, name: string): number | null {
  return f[name] === undefined ? null : numFlag(f, name);
}
