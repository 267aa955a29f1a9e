// Flag parsing shared by the CLI commands: node:util parseArgs with a help text per flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type Flags = Record<string, string | boolean | undefined>;
export type FlagSpec = Record<string, { type: 'string' | 'boolean'; default?: string | boolean; help: string }>;

/** A mistake in the command line: printed without a stack, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
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
    values = parseArgs({ args, options, allowPositionals: false, strict: true }).values as Flags;
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${usage}\n${flagHelp(spec)}`);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n\nFlags:\n${flagHelp(spec)}\n`);
    process.exit(0);
  }
  return values;
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
