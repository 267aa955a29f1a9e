import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  applyOperator,
  evaluate,
  evaluateExpression,
  formatExpression,
  generateListOps,
  lengthBuckets,
  ListOpsFormatError,
  loadListOps,
  makeRng,
  operatorDepth,
  OPERATORS,
  parse,
  randomTree,
  saveListOps,
  tokenCount,
  tokenize,
  treeTokens,
  Vocab,
  writeGenerated,
  type Example,
  type ListOpsTree,
} from '../models/listops/data.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = path.resolve(repoRoot, '../shared/data/listops');
const validPath = path.join(dataDir, 'valid.tsv');
const testPath = path.join(dataDir, 'test.tsv');
const haveData = existsSync(validPath) && existsSync(testPath);
if (!haveData) {
  console.log(`[listops_data] real-data tests skipped: ${validPath} / ${testPath} not found`);
}

function tmpDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'listops-test-'));
}

function allOps(tree: ListOpsTree, out: { op: string; n: number }[] = []): { op: string; n: number }[] {
  if (tree.kind === 'op') {
    out.push({ op: tree.op, n: tree.args.length });
    for (const a of tree.args) allOps(a, out);
  }
  return out;
}

function allDigits(tree: ListOpsTree, out: number[] = []): number[] {
  if (tree.kind === 'digit') out.push(tree.value);
  else for (const a of tree.args) allDigits(a, out);
  return out;
}

/** |count - n p| must be within z binomial standard deviations. */
function expectBinomial(count: number, n: number, p: number, z = 5): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(count - n * p), `count ${count} vs expected ${n * p} (sd ${sd.toFixed(1)})`).toBeLessThanOrEqual(z * sd);
}

// ---------------------------------------------------------------------------

describe('tokenize / parse / evaluate', () => {
  it('token level drops parentheses and splits [OP', () => {
    expect(tokenize('( ( ( [MIN 1 ) 6 ) ] )')).toEqual(['[', 'MIN', '1', '6', ']']);
    expect(tokenize('[MAX 2 9 [MIN 4 7 ] 0 ]')).toEqual(['[', 'MAX', '2', '9', '[', 'MIN', '4', '7', ']', '0', ']']);
    expect(tokenize('7')).toEqual(['7']);
  });

  it('char level yields every character of the raw expression, spaces included', () => {
    expect(tokenize('( [SM 1 )', { charLevel: true })).toEqual(['(', ' ', '[', 'S', 'M', ' ', '1', ' ', ')']);
  });

  it('operators follow the data semantics (MED = floor of numpy median)', () => {
    expect(applyOperator('MED', [1, 2])).toBe(1);
    expect(applyOperator('MED', [1, 4])).toBe(2);
    expect(applyOperator('MED', [6, 3, 5, 4])).toBe(4);
    expect(applyOperator('MED', [9, 0, 5])).toBe(5);
    expect(applyOperator('SM', [9, 8, 7])).toBe(4);
    expect(applyOperator('MAX', [3, 9, 1])).toBe(9);
    expect(applyOperator('MIN', [3, 9, 1])).toBe(1);
    expect(evaluateExpression('( ( ( ( ( [MIN 1 ) 6 ) 5 ) 0 ) ] )')).toBe(0);
    expect(evaluateExpression('( ( ( ( ( [SM 9 ) ( ( ( ( ( [MED 4 ) 3 ) 0 ) 8 ) ] ) ) 9 ) 8 ) ] )')).toBe(9);
  });

  it('format/parse round-trip and tokens agree on random trees (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 2, max: 8 }), (seed, maxDepth) => {
        const tree = randomTree(makeRng(seed), maxDepth);
        const expr = formatExpression(tree);
        expect(parse(expr)).toEqual(tree);
        expect(tokenize(expr)).toEqual(treeTokens(tree));
        expect(tokenCount(tree)).toBe(treeTokens(tree).length);
        expect(evaluateExpression(expr)).toBe(evaluate(tree));
        const v = evaluate(tree);
        expect(Number.isInteger(v) && v >= 0 && v <= 9).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('deep nesting does not overflow the parser or evaluator', () => {
    let expr = '3';
    for (let i = 0; i < 20000; i++) expr = `[SM 1 ${expr} ]`;
    expect(evaluateExpression(expr)).toBe((3 + 20000) % 10);
  });
});

// ---------------------------------------------------------------------------

describe.skipIf(!haveData)('real ListOps splits', () => {
  const valid = haveData ? loadListOps(validPath, { maxLen: Infinity }) : [];
  const test = haveData ? loadListOps(testPath, { maxLen: Infinity }) : [];

  it('evaluator agrees with all 11,000 labels of valid + test', () => {
    expect(valid.length).toBe(1000);
    expect(test.length).toBe(10000);
    const bad = [...valid, ...test].filter((e) => evaluateExpression(e.expr) !== e.label);
    expect(bad.slice(0, 3)).toEqual([]);
  });

  it('lower-middle median would NOT match the labels (the MED choice is determined by the data)', () => {
    const lowerMed = (t: ListOpsTree): number =>
      t.kind === 'digit'
        ? t.value
        : t.op === 'MED'
          ? (() => {
              const s = t.args.map(lowerMed).sort((a, b) => a - b);
              return s[(s.length - 1) >> 1];
            })()
          : applyOperator(t.op, t.args.map(lowerMed));
    const disagree = test.filter((e) => lowerMed(parse(e.expr)) !== e.label).length;
    expect(disagree).toBeGreaterThan(1000);
  });

  it('default filter (token count < 100) keeps 8,689 of 10,000 test lines', () => {
    const keptTest = loadListOps(testPath).length;
    const keptValid = loadListOps(validPath).length;
    console.log(`[listops_data] default filter keeps test ${keptTest}/10000, valid ${keptValid}/1000`);
    expect(keptTest).toBe(8689);
    expect(keptValid).toBe(857);
    expect(loadListOps(testPath).every((e) => e.tokens.length < 100)).toBe(true);
  });

  it('every real line is in canonical format (formatExpression(parse(x)) === x)', () => {
    const off = [...valid, ...test].filter((e) => formatExpression(parse(e.expr)) !== e.expr);
    expect(off.slice(0, 3)).toEqual([]);
  });

  it('char-level loading tokenizes raw characters', () => {
    const ex = loadListOps(validPath, { charLevel: true, maxLen: Infinity });
    expect(ex.length).toBe(1000);
    for (const e of ex.slice(0, 50)) expect(e.tokens.join('')).toBe(e.expr);
  });

  it('writeGenerated excludes every expression of the exclude files', () => {
    const dir = tmpDir();
    try {
      const out = path.join(dir, 'gen.tsv');
      const gen = writeGenerated(out, 5000, 11, [validPath, testPath]);
      const real = new Set([...valid, ...test].map((e) => e.expr));
      expect(gen.filter((e) => real.has(e.expr))).toEqual([]);
      // Without the exclusion, the same seed does hit real expressions (so the check above can fail).
      const plain = generateListOps({ count: 5000, seed: 11 });
      expect(plain.filter((e) => real.has(e.expr)).length).toBeGreaterThan(0);
      expect(loadListOps(out, { maxLen: Infinity, verifyLabels: true })).toEqual(gen);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------

describe('generateListOps', () => {
  const N = 20000;
  const gen = generateListOps({ count: N, seed: 1 });

  it('produces consistent, canonical, correctly labelled expressions', () => {
    expect(gen.length).toBe(N);
    const problems: string[] = [];
    for (const e of gen) {
      const tree = parse(e.expr);
      const toks = tokenize(e.expr);
      if (tree.kind !== 'op') problems.push(`bare root: ${e.expr}`);
      if (toks.length !== e.tokens.length || toks.some((t, i) => t !== e.tokens[i])) problems.push(`tokens: ${e.expr}`);
      if (e.label !== evaluate(tree)) problems.push(`label: ${e.expr}`);
      if (formatExpression(tree) !== e.expr) problems.push(`format: ${e.expr}`);
      if (operatorDepth(tree) > 19) problems.push(`depth: ${e.expr}`);
      if (allOps(tree).some((o) => o.n < 2 || o.n > 5)) problems.push(`arity: ${e.expr}`);
    }
    expect(problems.slice(0, 5)).toEqual([]);
  });

  it('has no duplicates', () => {
    expect(new Set(gen.map((e) => e.expr)).size).toBe(N);
  });

  it('is deterministic per seed and differs across seeds', () => {
    const again = generateListOps({ count: 500, seed: 1 });
    expect(again).toEqual(gen.slice(0, 500));
    const other = generateListOps({ count: 500, seed: 2 });
    const same = other.filter((e, i) => e.expr === gen[i].expr).length;
    expect(same).toBeLessThan(100);
    expect(other.map((e) => e.expr)).not.toEqual(gen.slice(0, 500).map((e) => e.expr));
  });

  it('never emits excluded expressions', () => {
    const exclude = new Set(gen.slice(0, 2000).map((e) => e.expr));
    const g2 = generateListOps({ count: 2000, seed: 1, exclude });
    expect(g2.length).toBe(2000);
    expect(g2.filter((e) => exclude.has(e.expr))).toEqual([]);
  });

  it('respects maxTokens and maxDepth', () => {
    const short = generateListOps({ count: 2000, seed: 3, maxTokens: 30 });
    expect(Math.max(...short.map((e) => e.tokens.length))).toBeLessThanOrEqual(30);
    const shallow = generateListOps({ count: 2000, seed: 3, maxDepth: 3 });
    expect(Math.max(...shallow.map((e) => operatorDepth(parse(e.expr))))).toBeLessThanOrEqual(2);
  });

  it('fails loudly when the request cannot be met', () => {
    // maxDepth 2 and maxTokens 5: only [OP d d ] exists -> 4 * 100 = 400 distinct expressions.
    expect(() => generateListOps({ count: 401, seed: 1, maxDepth: 2, maxTokens: 5, maxAttempts: 200000 })).toThrow(
      /only 400 of 401/,
    );
  });

  it('round-trips through saveListOps / loadListOps', () => {
    const dir = tmpDir();
    try {
      const p = path.join(dir, 'sub', 'gen.tsv');
      saveListOps(p, gen.slice(0, 3000));
      const back = loadListOps(p, { maxLen: Infinity, verifyLabels: true });
      expect(back).toEqual(gen.slice(0, 3000));
      const text = readFileSync(p, 'utf8');
      expect(text.split('\n').length).toBe(3001);
      expect(readdirSync(path.dirname(p))).toEqual(['gen.tsv']); // no temp file left behind
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('operator and digit frequencies are uniform within binomial error', () => {
    const ops: string[] = [];
    const digits: number[] = [];
    for (const e of gen) {
      const t = parse(e.expr);
      for (const o of allOps(t)) ops.push(o.op);
      allDigits(t, digits);
    }
    for (const op of OPERATORS) expectBinomial(ops.filter((o) => o === op).length, ops.length, 0.25);
    for (let d = 0; d < 10; d++) expectBinomial(digits.filter((x) => x === d).length, digits.length, 0.1);
  });

  it('the raw recipe (before dedup) has P(digit) = 0.75 and uniform 2..5 arguments', () => {
    const rng = makeRng(5);
    let nonRootFree = 0;
    let digitsFree = 0;
    const nargs = [0, 0, 0, 0];
    const walk = (t: ListOpsTree, depth: number): void => {
      if (depth > 1 && depth < 20) {
        nonRootFree++;
        if (t.kind === 'digit') digitsFree++;
      }
      if (t.kind === 'op') {
        nargs[t.args.length - 2]++;
        for (const a of t.args) walk(a, depth + 1);
      }
    };
    for (let i = 0; i < 5000; i++) walk(randomTree(rng), 1);
    expectBinomial(digitsFree, nonRootFree, 0.75);
    const totalOps = nargs.reduce((a, b) => a + b, 0);
    for (const c of nargs) expectBinomial(c, totalOps, 0.25);
  });

  it('rootMayBeDigit reproduces the unconditioned recipe (at most 10 bare digits after dedup)', () => {
    const g = generateListOps({ count: 300, seed: 9, rootMayBeDigit: true });
    const bare = g.filter((e) => /^[0-9]$/.test(e.expr)).length;
    expect(bare).toBeGreaterThan(0);
    expect(bare).toBeLessThanOrEqual(10);
  });
});

// ---------------------------------------------------------------------------

describe('malformed input', () => {
  const cases: [string, string, RegExp][] = [
    ['no tab', '0 ( ( [MAX 1 ) 2 ) ] )', /:2: expected 'label<TAB>expression'/],
    ['bad label', '12\t( ( ( [MAX 1 ) 2 ) ] )', /:2: expected a label digit 0-9/],
    ['unknown operator', '3\t( ( ( [AVG 1 ) 2 ) ] )', /:2: malformed expression: expected an operator/],
    ['unbalanced parens', '3\t( ( ( [MAX 1 ) 2 ) ] ', /:2: malformed expression: unbalanced parentheses/],
    ['unclosed bracket', '3\t( ( ( [MAX 1 ) 2 ) )', /:2: malformed expression: .*not closed/],
    ['trailing token', '3\t( ( ( [MAX 1 ) 2 ) ] ) 4', /:2: malformed expression: expected end of expression/],
    ['two-digit number', '3\t( ( ( [MAX 10 ) 2 ) ] )', /:2: malformed expression: expected a digit 0-9/],
    ['empty expression', '3\t', /:2: malformed expression: expected an expression/],
    ['extra field', '3\t( ( ( [MAX 1 ) 2 ) ] )\tx', /:2: expected exactly 2 tab-separated fields/],
  ];
  for (const [name, line, re] of cases) {
    it(`rejects ${name} with file and line number`, () => {
      const dir = tmpDir();
      try {
        const p = path.join(dir, 'bad.tsv');
        writeFileSync(p, `2\t( ( ( [MAX 1 ) 2 ) ] )\n${line}\n`);
        let err: unknown;
        try {
          loadListOps(p);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ListOpsFormatError);
        expect((err as Error).message).toContain(p);
        expect((err as Error).message).toMatch(re);
        expect((err as ListOpsFormatError).line).toBe(2);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('a missing file names the path', () => {
    const p = path.join(tmpdir(), 'definitely-missing-listops-file.tsv');
    expect(() => loadListOps(p)).toThrow(p);
  });

  it('verifyLabels catches a wrong label', () => {
    const dir = tmpDir();
    try {
      const p = path.join(dir, 'wrong.tsv');
      writeFileSync(p, '5\t( ( ( [MAX 1 ) 2 ) ] )\n');
      expect(loadListOps(p)).toHaveLength(1);
      expect(() => loadListOps(p, { verifyLabels: true })).toThrow(/:1: label 5 disagrees with evaluated value 2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('saveListOps rejects bad examples without touching the existing file', () => {
    const dir = tmpDir();
    try {
      const p = path.join(dir, 'keep.tsv');
      writeFileSync(p, 'original\n');
      expect(() => saveListOps(p, [{ label: 10, expr: '1' }])).toThrow(/label 10/);
      expect(() => saveListOps(p, [{ label: 1, expr: 'a\tb' }])).toThrow(/tab/);
      expect(readFileSync(p, 'utf8')).toBe('original\n');
      expect(readdirSync(dir)).toEqual(['keep.tsv']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------

describe('Vocab', () => {
  it('reserves <pad>=0 and <unk>=1, encodes, and round-trips through JSON', () => {
    const ex = generateListOps({ count: 200, seed: 4 });
    const v = Vocab.build(ex.map((e) => e.tokens));
    expect(v.itos[0]).toBe('<pad>');
    expect(v.itos[1]).toBe('<unk>');
    expect(v.size).toBe(2 + 10 + 4 + 2); // digits, operators, '[' and ']'
    const ids = v.encode(['[', 'MAX', '7', ']', 'FOO']);
    expect(ids).toBeInstanceOf(Int32Array);
    expect(ids[4]).toBe(1);
    expect(v.decode(ids)).toEqual(['[', 'MAX', '7', ']', '<unk>']);
    const v2 = Vocab.fromJSON(JSON.parse(JSON.stringify(v)));
    expect(v2.itos).toEqual(v.itos);
    expect(Array.from(v2.encode(ex[0].tokens))).toEqual(Array.from(v.encode(ex[0].tokens)));
    expect(() => Vocab.fromJSON({ itos: ['a'] })).toThrow(/listops-vocab/);
    expect(() => Vocab.fromJSON({ kind: 'listops-vocab', version: 1, itos: ['<pad>', '<unk>', 'x', 'x'] })).toThrow(
      /duplicate/,
    );
  });

  it('is deterministic (frequency order, ties by code point)', () => {
    const v = Vocab.build([['b', 'a', 'c', 'c']]);
    expect(v.itos).toEqual(['<pad>', '<unk>', 'c', 'a', 'b']);
  });
});

// ---------------------------------------------------------------------------

describe('lengthBuckets', () => {
  const ex: Example[] = generateListOps({ count: 5000, seed: 8 });

  it('partitions the indices, is seeded, and groups similar lengths', () => {
    const b = lengthBuckets(ex, 32, 1);
    const flat = b.flat().sort((x, y) => x - y);
    expect(flat).toEqual(Array.from({ length: ex.length }, (_, i) => i));
    expect(b.every((batch) => batch.length >= 1 && batch.length <= 32)).toBe(true);
    expect(lengthBuckets(ex, 32, 1)).toEqual(b);
    expect(lengthBuckets(ex, 32, 2)).not.toEqual(b);

    const spread = (batches: number[][]): number =>
      batches.reduce((s, batch) => {
        const L = batch.map((i) => ex[i].tokens.length);
        return s + Math.max(...L) - Math.min(...L);
      }, 0) / batches.length;
    const rng = makeRng(3);
    const perm = Array.from({ length: ex.length }, (_, i) => i).sort(() => rng() - 0.5);
    const random: number[][] = [];
    for (let i = 0; i < perm.length; i += 32) random.push(perm.slice(i, i + 32));
    expect(spread(b)).toBeLessThan(spread(random) / 4);
    // Batch order is shuffled, not sorted by length.
    const firstLens = b.map((batch) => ex[batch[0]].tokens.length);
    const sorted = [...firstLens].sort((x, y) => x - y);
    expect(firstLens).not.toEqual(sorted);
  });
});
