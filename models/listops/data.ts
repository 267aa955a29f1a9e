// ListOps data layer: tokenizer, parser, evaluator, TSV loader/saver, seeded
// generator, vocabulary and length bucketing. No neural network code here.
//
// File format (checked against the real valid/test splits): one example per
// line, `label<TAB>expression`, label a single digit 0-9. The expression is the
// "tree" serialisation of Nangia & Bowman's ListOps: an operator applied to n
// arguments a1..an is written as n+1 opening parentheses, then `[OP a1 )`,
// then `a2 )` ... `an )`, then `] )`, tokens separated by single spaces:
//
//   MIN(1, 6, 5, 0)  ->  ( ( ( ( ( [MIN 1 ) 6 ) 5 ) 0 ) ] )
//
// (a left-branching binary bracketing of `[MIN 1 6 5 0 ]`). Arguments are
// digits or nested applications. Operators: MAX, MIN, MED, SM.
//
// Facts established from the real data (see test/listops_data.test.ts):
// - MED is the median in the numpy sense with the result truncated to an int:
//   for an even count it is floor((a + b) / 2) of the two middle values of the
//   sorted list. (Lower-middle disagrees with 1,386 of the 10,000 test labels;
//   floor-of-mean agrees with all 11,000 valid+test labels.)
// - SM is the sum mod 10.
// - The reference length filter keeps examples whose token count is < 100,
//   where tokens are taken with parentheses dropped and `[MAX` split into `[`
//   and `MAX`; that keeps 8,689 of the 10,000 test lines and 857 of the 1,000
//   valid lines. (Other counting conventions give 8,925 / 7,103 / 5,068.)
// - Operators occur at depths 1..19 only (root = depth 1): the generator's
//   maximum depth is 20 with depth-20 nodes forced to digits.
// - test.tsv contains exactly one bare-digit line (`9\t9`, line 4259). The
//   original generator lets the root be a digit with probability 0.75, but it
//   deduplicates, so at most 10 such lines can exist over all splits. The
//   generator here forces an operator root by default (which is the original
//   distribution conditioned on a non-trivial expression); pass
//   `rootMayBeDigit: true` for the unconditioned recipe.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../../platform/atomic.ts';

// ---------------------------------------------------------------------------
// Types

export const OPERATORS = ['MAX', 'MIN', 'MED', 'SM'] as const;
export type Operator = (typeof OPERATORS)[number];

export type Example = { label: number; tokens: string[]; expr: string };

export type ListOpsTree =
  | { kind: 'digit'; value: number }
  | { kind: 'op'; op: Operator; args: ListOpsTree[] };

/** Error for a malformed expression; `position` is a token index when known. */
export class ListOpsParseError extends Error {
  constructor(message: string, readonly position?: number) {
    super(message);
    this.name = 'ListOpsParseError';
  }
}

/** Error for a malformed line in a ListOps TSV file. */
export class ListOpsFormatError extends Error {
  constructor(readonly file: string, readonly line: number, detail: string) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'ListOpsFormatError';
  }
}

const OPERATOR_SET: ReadonlySet<string> = new Set(OPERATORS);

function isOperator(s: string): s is Operator {
  return OPERATOR_SET.has(s);
}

// ---------------------------------------------------------------------------
// Tokenizer

// Scanner: single brackets/parentheses, alphabetic runs, digit runs, or any
// other run of non-space characters (which the parser will reject).
const TOKEN_RE = /[()[\]]|[A-Za-z]+|[0-9]+|[^\s()[\]A-Za-z0-9]+/g;

/**
 * Token level (default): parentheses are dropped, `[MAX` becomes `[`, `MAX`;
 * `]` and digits are kept. Works whether or not there is a space after `[`.
 *
 * charLevel: every character of the raw expression string, spaces and
 * parentheses included (`Array.from(expr)`). This reproduces the reference
 * code's quirk of handing the raw expression string to a torchtext Field whose
 * tokenizer iterates it as a sequence (`list(s)`): each character becomes a
 * token, so `[MAX` turns into `[`, `M`, `A`, `X` and the separating spaces are
 * tokens too. No stripping or normalisation is applied.
 */
export function tokenize(expr: string, opts: { charLevel?: boolean } = {}): string[] {
  if (opts.charLevel) return Array.from(expr);
  const out: string[] = [];
  for (const m of expr.matchAll(TOKEN_RE)) {
    const t = m[0];
    if (t === '(' || t === ')') continue;
    out.push(t);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Parser / evaluator / formatter

function checkParens(expr: string): void {
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr.charCodeAt(i);
    if (c === 40 /* ( */) depth++;
    else if (c === 41 /* ) */) {
      depth--;
      if (depth < 0) throw new ListOpsParseError(`unbalanced ')' at character ${i}`);
    }
  }
  if (depth !== 0) throw new ListOpsParseError(`unbalanced parentheses: ${depth} '(' left open`);
}

/** Parse a token list (parentheses already dropped) into a tree. Iterative. */
export function parseTokens(tokens: readonly string[]): ListOpsTree {
  if (tokens.length === 0) throw new ListOpsParseError('expected an expression, got nothing');
  type Frame = { op: Operator; args: ListOpsTree[] };
  const stack: Frame[] = [];
  let root: ListOpsTree | undefined;
  let i = 0;
  while (i < tokens.length) {
    if (root !== undefined) {
      throw new ListOpsParseError(
        `expected end of expression at token ${i}, got '${tokens[i]}'`,
        i,
      );
    }
    const t = tokens[i];
    let done: ListOpsTree | undefined;
    if (t === '[') {
      const op = tokens[i + 1];
      if (op === undefined || !isOperator(op)) {
        throw new ListOpsParseError(
          `expected an operator (${OPERATORS.join(', ')}) after '[' at token ${i + 1}, got ${op === undefined ? 'end of input' : `'${op}'`}`,
          i + 1,
        );
      }
      stack.push({ op, args: [] });
      i += 2;
      continue;
    } else if (t === ']') {
      const frame = stack.pop();
      if (frame === undefined) throw new ListOpsParseError(`unexpected ']' at token ${i}`, i);
      if (frame.args.length === 0) {
        throw new ListOpsParseError(`operator ${frame.op} has no arguments (']' at token ${i})`, i);
      }
      done = { kind: 'op', op: frame.op, args: frame.args };
    } else if (t.length === 1 && t >= '0' && t <= '9') {
      done = { kind: 'digit', value: t.charCodeAt(0) - 48 };
    } else {
      throw new ListOpsParseError(
        `expected a digit 0-9, '[OP' or ']' at token ${i}, got '${t}'`,
        i,
      );
    }
    i++;
    const top = stack[stack.length - 1];
    if (top) top.args.push(done);
    else root = done;
  }
  if (stack.length > 0) {
    throw new ListOpsParseError(
      `unexpected end of expression: ${stack.length} operator(s) not closed with ']'`,
      tokens.length,
    );
  }
  return root as ListOpsTree;
}

/** Parse an expression string (either the parenthesised tree format or the plain `[MAX 1 2 ]` format). */
export function parse(expr: string): ListOpsTree {
  checkParens(expr);
  return parseTokens(tokenize(expr));
}

/** Apply an operator to digit values. MED: floor of the numpy median. */
export function applyOperator(op: Operator, values: readonly number[]): number {
  if (values.length === 0) throw new Error(`applyOperator: ${op} of no values`);
  switch (op) {
    case 'MAX': {
      let m = values[0];
      for (const v of values) if (v > m) m = v;
      return m;
    }
    case 'MIN': {
      let m = values[0];
      for (const v of values) if (v < m) m = v;
      return m;
    }
    case 'SM': {
      let s = 0;
      for (const v of values) s += v;
      return s % 10;
    }
    case 'MED': {
      const s = [...values].sort((a, b) => a - b);
      const n = s.length;
      if (n % 2 === 1) return s[(n - 1) / 2];
      return Math.floor((s[n / 2 - 1] + s[n / 2]) / 2);
    }
  }
}

/** Evaluate a tree to a digit 0..9 (iterative post-order; no recursion limit). */
export function evaluate(tree: ListOpsTree): number {
  if (tree.kind === 'digit') return tree.value;
  type Frame = { node: { op: Operator; args: ListOpsTree[] }; vals: number[] };
  const stack: Frame[] = [{ node: tree, vals: [] }];
  let result = -1;
  while (stack.length > 0) {
    const f = stack[stack.length - 1];
    if (f.vals.length === f.node.args.length) {
      stack.pop();
      const v = applyOperator(f.node.op, f.vals);
      const parent = stack[stack.length - 1];
      if (parent) parent.vals.push(v);
      else result = v;
      continue;
    }
    const child = f.node.args[f.vals.length];
    if (child.kind === 'digit') f.vals.push(child.value);
    else stack.push({ node: child, vals: [] });
  }
  return result;
}

export function evaluateExpression(expr: string): number {
  return evaluate(parse(expr));
}

/** Serialise a tree in exactly the format of the real data files. */
export function formatExpression(tree: ListOpsTree): string {
  const parts: string[] = [];
  const emit = (node: ListOpsTree): void => {
    if (node.kind === 'digit') {
      parts.push(String(node.value));
      return;
    }
    const n = node.args.length;
    for (let k = 0; k <= n; k++) parts.push('(');
    parts.push('[' + node.op);
    for (const a of node.args) {
      emit(a);
      parts.push(')');
    }
    parts.push(']', ')');
  };
  emit(tree);
  return parts.join(' ');
}

/** Default-level tokens of a tree (same as tokenize(formatExpression(tree))). */
export function treeTokens(tree: ListOpsTree): string[] {
  const out: string[] = [];
  const emit = (node: ListOpsTree): void => {
    if (node.kind === 'digit') {
      out.push(String(node.value));
      return;
    }
    out.push('[', node.op);
    for (const a of node.args) emit(a);
    out.push(']');
  };
  emit(tree);
  return out;
}

/** Token count under the default tokenization (digit = 1; op = 3 + args). */
export function tokenCount(tree: ListOpsTree): number {
  if (tree.kind === 'digit') return 1;
  let s = 3;
  for (const a of tree.args) s += tokenCount(a);
  return s;
}

/** Depth of the deepest operator node (root = 1); 0 for a bare digit. */
export function operatorDepth(tree: ListOpsTree): number {
  if (tree.kind === 'digit') return 0;
  let d = 0;
  for (const a of tree.args) d = Math.max(d, operatorDepth(a));
  return 1 + d;
}

// ---------------------------------------------------------------------------
// Loading / saving

export type LoadOptions = {
  /** Keep examples with token count < maxLen (default 100; Infinity keeps all). */
  maxLen?: number;
  /** Character-level tokens (see tokenize). The maxLen filter then counts characters. */
  charLevel?: boolean;
  /** Throw if a label disagrees with the evaluated expression (default false). */
  verifyLabels?: boolean;
};

function parseLine(file: string, lineNo: number, line: string): { label: number; expr: string } {
  const tab = line.indexOf('\t');
  if (tab < 0) {
    throw new ListOpsFormatError(
      file,
      lineNo,
      `expected 'label<TAB>expression', found no tab in ${JSON.stringify(line.slice(0, 60))}`,
    );
  }
  const labelStr = line.slice(0, tab);
  const expr = line.slice(tab + 1);
  if (expr.includes('\t')) {
    throw new ListOpsFormatError(file, lineNo, `expected exactly 2 tab-separated fields, found more`);
  }
  if (!/^[0-9]$/.test(labelStr)) {
    throw new ListOpsFormatError(
      file,
      lineNo,
      `expected a label digit 0-9 before the tab, got ${JSON.stringify(labelStr)}`,
    );
  }
  return { label: Number(labelStr), expr };
}

function readTextFile(path: string): string {
  if (!existsSync(path)) throw new Error(`ListOps file not found: ${path}`);
  const text = readFileSync(path, 'utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // a UTF-8 byte-order mark is not part of line 1
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/**
 * Load a ListOps TSV file. Every line is validated (label digit, parseable
 * expression) even if it is then dropped by the length filter.
 */
export function loadListOps(path: string, opts: LoadOptions = {}): Example[] {
  const maxLen = opts.maxLen ?? 100;
  const charLevel = opts.charLevel ?? false;
  const lines = splitLines(readTextFile(path));
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const { label, expr } = parseLine(path, lineNo, lines[i]);
    let tree: ListOpsTree;
    try {
      tree = parse(expr);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new ListOpsFormatError(path, lineNo, `malformed expression: ${msg}`);
    }
    if (opts.verifyLabels) {
      const v = evaluate(tree);
      if (v !== label) {
        throw new ListOpsFormatError(path, lineNo, `label ${label} disagrees with evaluated value ${v}`);
      }
    }
    const tokens = tokenize(expr, { charLevel });
    if (tokens.length < maxLen) out.push({ label, tokens, expr });
  }
  return out;
}

/** Read only the expression strings of a file (all lines, no filter). */
export function loadExpressions(path: string): string[] {
  return loadListOps(path, { maxLen: Infinity }).map((e) => e.expr);
}

/** Write `label<TAB>expr` lines atomically (platform/atomic.ts: temp file in the same directory, fsync, rename). */
export function saveListOps(path: string, examples: readonly { label: number; expr: string }[]): void {
  const parts: string[] = [];
  for (let i = 0; i < examples.length; i++) {
    const { label, expr } = examples[i];
    if (!Number.isInteger(label) || label < 0 || label > 9) {
      throw new Error(`saveListOps: example ${i} has label ${label}, expected an integer 0-9`);
    }
    if (/[\t\r\n]/.test(expr) || expr.length === 0) {
      throw new Error(`saveListOps: example ${i} has an empty expression or one containing a tab/newline`);
    }
    parts.push(`${label}\t${expr}\n`);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, parts.join(''));
}

// ---------------------------------------------------------------------------
// Seeded PRNG (mulberry32) — never Math.random for data.

export type Rng = () => number;

/** mulberry32 seeded through a splitmix32 scramble so nearby seeds decorrelate. Returns floats in [0, 1). */
export function makeRng(seed: number): Rng {
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  let z = (seed >>> 0) + 0x9e3779b9;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  let a = (z ^ (z >>> 16)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

function shuffleInPlace<T>(arr: T[], rng: Rng): T[] {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    const t = arr[i];
    arr[i] = arr[j];
    arr[j] = t;
  }
  return arr;
}

// ---------------------------------------------------------------------------
// Generator

export type GenerateOptions = {
  count: number;
  seed: number;
  /** Depth at which nodes are forced to digits (root = depth 1). Default 20. */
  maxDepth?: number;
  /** Expressions (exact strings in file format) that must not be produced. */
  exclude?: ReadonlySet<string>;
  /** Reject expressions whose token count exceeds this (keeps count <= maxTokens). Default: no limit. */
  maxTokens?: number;
  /** Allow a bare-digit root (the unconditioned original recipe). Default false. */
  rootMayBeDigit?: boolean;
  /** Give up after this many draws (default 100 * count + 100000). */
  maxAttempts?: number;
};

export const VALUE_PROB = 0.75;
export const MIN_ARGS = 2;
export const MAX_ARGS = 5;

/** Draw one random tree with the original ListOps recipe. */
export function randomTree(rng: Rng, maxDepth = 20, rootMayBeDigit = false): ListOpsTree {
  const gen = (depth: number): ListOpsTree => {
    const forceOp = depth === 1 && !rootMayBeDigit;
    if (depth >= maxDepth || (!forceOp && rng() < VALUE_PROB)) {
      return { kind: 'digit', value: randInt(rng, 10) };
    }
    const op = OPERATORS[randInt(rng, OPERATORS.length)];
    const n = MIN_ARGS + randInt(rng, MAX_ARGS - MIN_ARGS + 1);
    const args: ListOpsTree[] = [];
    for (let k = 0; k < n; k++) args.push(gen(depth + 1));
    return { kind: 'op', op, args };
  };
  return gen(1);
}

/**
 * Generate `count` distinct labelled expressions, deterministic per seed.
 * Duplicates, excluded expressions and those over maxTokens are redrawn.
 */
export function generateListOps(opts: GenerateOptions): Example[] {
  const { count, seed } = opts;
  const maxDepth = opts.maxDepth ?? 20;
  const rootMayBeDigit = opts.rootMayBeDigit ?? false;
  const maxTokens = opts.maxTokens ?? Infinity;
  const exclude = opts.exclude ?? new Set<string>();
  if (!Number.isInteger(count) || count < 0) throw new Error(`count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(maxDepth) || maxDepth < 1) throw new Error(`maxDepth must be a positive integer, got ${maxDepth}`);
  if (!rootMayBeDigit && maxDepth < 2) {
    throw new Error('maxDepth must be >= 2 when the root is forced to be an operator');
  }
  const maxAttempts = opts.maxAttempts ?? 100 * count + 100_000;
  const rng = makeRng(seed);
  const seen = new Set<string>();
  const out: Example[] = [];
  let attempts = 0;
  while (out.length < count) {
    if (attempts++ >= maxAttempts) {
      throw new Error(
        `generateListOps: only ${out.length} of ${count} distinct expressions after ${maxAttempts} draws ` +
          `(maxTokens=${maxTokens}, maxDepth=${maxDepth}, ${exclude.size} excluded)`,
      );
    }
    const tree = randomTree(rng, maxDepth, rootMayBeDigit);
    if (tokenCount(tree) > maxTokens) continue;
    const expr = formatExpression(tree);
    if (seen.has(expr) || exclude.has(expr)) continue;
    seen.add(expr);
    out.push({ label: evaluate(tree), tokens: treeTokens(tree), expr });
  }
  return out;
}

/**
 * Generate `count` expressions with `seed`, excluding every expression found in
 * `excludePaths` (ListOps TSV files, all lines, canonicalised), and save them
 * atomically to `path`. Returns the generated examples.
 */
export function writeGenerated(
  path: string,
  count: number,
  seed: number,
  excludePaths: readonly string[] = [],
  opts: Omit<GenerateOptions, 'count' | 'seed' | 'exclude'> = {},
): Example[] {
  const exclude = new Set<string>();
  for (const p of excludePaths) {
    for (const e of loadExpressions(p)) exclude.add(formatExpression(parse(e)));
  }
  const examples = generateListOps({ ...opts, count, seed, exclude });
  saveListOps(path, examples);
  return examples;
}

// ---------------------------------------------------------------------------
// Vocabulary

export const PAD = '<pad>';
export const UNK = '<unk>';

export type VocabJSON = { kind: 'listops-vocab'; version: 1; itos: string[] };

export class Vocab {
  readonly itos: readonly string[];
  private readonly stoi: Map<string, number>;
  static readonly PAD_ID = 0;
  static readonly UNK_ID = 1;

  private constructor(itos: string[]) {
    if (itos[0] !== PAD || itos[1] !== UNK) throw new Error(`vocab must start with ${PAD}, ${UNK}`);
    const stoi = new Map<string, number>();
    itos.forEach((s, i) => {
      if (typeof s !== 'string') throw new Error(`vocab entry ${i} is not a string`);
      if (stoi.has(s)) throw new Error(`duplicate vocab entry ${JSON.stringify(s)}`);
      stoi.set(s, i);
    });
    this.itos = Object.freeze([...itos]);
    this.stoi = stoi;
  }

  /** Build from token lists: specials first, then by descending frequency, ties in code-point order. */
  static build(tokenLists: Iterable<readonly string[]>, opts: { minFreq?: number } = {}): Vocab {
    const minFreq = opts.minFreq ?? 1;
    const counts = new Map<string, number>();
    for (const toks of tokenLists) for (const t of toks) counts.set(t, (counts.get(t) ?? 0) + 1);
    counts.delete(PAD);
    counts.delete(UNK);
    const words = [...counts.entries()]
      .filter(([, c]) => c >= minFreq)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([w]) => w);
    return new Vocab([PAD, UNK, ...words]);
  }

  get size(): number {
    return this.itos.length;
  }

  index(token: string): number {
    return this.stoi.get(token) ?? Vocab.UNK_ID;
  }

  encode(tokens: readonly string[]): Int32Array {
    const out = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) out[i] = this.stoi.get(tokens[i]) ?? Vocab.UNK_ID;
    return out;
  }

  decode(ids: ArrayLike<number>): string[] {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) out.push(this.itos[ids[i]] ?? UNK);
    return out;
  }

  toJSON(): VocabJSON {
    return { kind: 'listops-vocab', version: 1, itos: [...this.itos] };
  }

  static fromJSON(json: unknown): Vocab {
    const j = json as Partial<VocabJSON> | null;
    if (!j || typeof j !== 'object' || j.kind !== 'listops-vocab' || j.version !== 1 || !Array.isArray(j.itos)) {
      throw new Error('Vocab.fromJSON: expected {kind: "listops-vocab", version: 1, itos: string[]}');
    }
    return new Vocab(j.itos);
  }
}

// ---------------------------------------------------------------------------
// Batching

/**
 * Seeded length bucketing. Indices are shuffled, split into pools of
 * `batchSize * poolBatches`, each pool is sorted by length (stable), cut into
 * batches of `batchSize` (the last batch of a pool may be smaller), and the
 * batch order is shuffled. Every index appears exactly once.
 */
export function lengthBuckets(
  examples: readonly { tokens: ArrayLike<unknown> }[],
  batchSize: number,
  seed: number,
  opts: { poolBatches?: number } = {},
): number[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  const poolBatches = opts.poolBatches ?? 50;
  const rng = makeRng(seed);
  const idx = shuffleInPlace(
    Array.from({ length: examples.length }, (_, i) => i),
    rng,
  );
  const poolSize = batchSize * poolBatches;
  const batches: number[][] = [];
  for (let p = 0; p < idx.length; p += poolSize) {
    const pool = idx.slice(p, p + poolSize);
    pool.sort((a, b) => examples[a].tokens.length - examples[b].tokens.length);
    for (let b = 0; b < pool.length; b += batchSize) batches.push(pool.slice(b, b + batchSize));
  }
  return shuffleInPlace(batches, rng);
}
