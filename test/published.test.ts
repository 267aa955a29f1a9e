// The published ListOps study comes out of `gapgrad report` at the current commit: its run records (grid, finish
// markers, each run's config, metrics and result, as `gapgrad reproduce` wrote them) are kept beside the report in
// docs/reproduction-listops/records, and reporting them again must give the published tables and charts. A change
// to the report's statistics, formatting or charts that would alter the published page fails here until the page is
// regenerated (`gapgrad report runs/reproduce-listops --publish docs/reproduction-listops` where the runs are, or
// `gapgrad report` on a copy of the records and its report/ folder copied over the published one).
import { describe, it, expect } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeReport } from '../cli/report.ts';

const PUBLISHED = resolve(import.meta.dirname, '..', 'docs', 'reproduction-listops');
// the report's first lines say when it was written: everything from the first section on must match
const body = (md: string) => md.slice(md.indexOf('\n## '));

describe('docs/reproduction-listops', () => {
  it('gapgrad report on the published run records gives the published results.md and charts', async () => {
    const out = mkdtempSync(join(tmpdir(), 'gapgrad-published-'));
    try {
      // every run of the grid has its records (a folder named runs/ is easily ignored by git)
      const grid = JSON.parse(readFileSync(join(PUBLISHED, 'records', 'grid.json'), 'utf8')) as { runs: { id: string }[] };
      for (const { id } of grid.runs) {
        for (const f of ['config.json', 'metrics.jsonl', 'result.jsonl']) expect(existsSync(join(PUBLISHED, 'records', 'runs', id, f)), `${id}/${f}`).toBe(true);
      }
      cpSync(join(PUBLISHED, 'records'), out, { recursive: true });
      const r = await writeReport(out, 'runs/reproduce-listops');
      expect(r.sections).toBe(1);
      const md = readFileSync(r.md, 'utf8');
      expect(md).toContain('9 of 9 runs finished');
      expect(body(md)).toBe(body(readFileSync(join(PUBLISHED, 'results.md'), 'utf8')));
      const charts = readdirSync(join(PUBLISHED, 'charts')).filter((f) => f.endsWith('.svg'));
      expect(charts.sort()).toEqual(['listops-test.svg', 'listops-valid.svg']);
      for (const c of charts) {
        expect(readFileSync(join(r.dir, 'charts', c), 'utf8'), c).toBe(readFileSync(join(PUBLISHED, 'charts', c), 'utf8'));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
