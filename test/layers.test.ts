// The layering rules of the codebase, checked on the sources: layers only look down
// (engine <- backends <- estimators <- models <- cli), and the layers a browser bundle is made of
// (engine, backends, estimators) touch nothing of Node: no `node:` modules, no `process`, no npm
// packages; Node-only code sits in platform/, which only models and the CLI import.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LAYERS = ['engine', 'backends', 'estimators', 'models', 'cli'] as const;
const CORE = new Set(['engine', 'backends', 'estimators']);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
function specifiers(src: string): string[] {
  const out: string[] = [];
  for (const m of src.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s*'([^']+)'|^\s*import\s*'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

/** The top-level folder (or root file) a relative specifier resolves to. */
function target(file: string, spec: string): string {
  return relative(root, resolve(root, dirname(file), spec)).split('/')[0]!;
}

const withoutComments = (src: string) => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');

describe('layers', () => {
  const files = [...LAYERS, 'platform'].flatMap((d) => sources(d).map((f) => ({ f, layer: d, src: readFileSync(join(root, f), 'utf8') })));

  it('finds the sources (the check is not vacuous)', () => {
    for (const d of LAYERS) expect(files.filter((x) => x.layer === d).length, d).toBeGreaterThan(0);
    expect(specifiers("import { a } from './x.ts';\nexport * from '../y.ts';\nconst m = await import('node:fs');")).toEqual(['./x.ts', '../y.ts', 'node:fs']);
  });

  it('each layer imports only its own layer and the layers below it (platform: models and the CLI only)', () => {
    const bad: string[] = [];
    for (const { f, layer, src } of files) {
      if (layer === 'platform') continue;
      const rank = LAYERS.indexOf(layer as (typeof LAYERS)[number]);
      for (const s of specifiers(src)) {
        if (!s.startsWith('.')) continue;
        const t = target(f, s);
        const tRank = LAYERS.indexOf(t as (typeof LAYERS)[number]);
        const ok = tRank >= 0 ? tRank <= rank : t === 'platform' ? rank >= LAYERS.indexOf('models') : layer === 'cli';
        if (!ok) bad.push(`${f} imports ${s} (${t})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('engine, backends and estimators import no node: module, no npm package and nothing from platform/, and never read process', () => {
    const bad: string[] = [];
    for (const { f, layer, src } of files) {
      if (!CORE.has(layer)) continue;
      for (const s of specifiers(src)) {
        if (!s.startsWith('.')) bad.push(`${f} imports ${s}`);
        else if (target(f, s) === 'platform') bad.push(`${f} imports ${s} (platform)`);
      }
      if (/\bprocess\s*\./.test(withoutComments(src))) bad.push(`${f} reads process`);
    }
    expect(bad).toEqual([]);
  });

  it('platform/ is imported by no core layer, and imports no model or CLI code', () => {
    const bad: string[] = [];
    for (const { f, layer, src } of files) {
      if (layer !== 'platform') continue;
      for (const s of specifiers(src)) {
        if (s.startsWith('.') && ['models', 'cli'].includes(target(f, s))) bad.push(`${f} imports ${s}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
