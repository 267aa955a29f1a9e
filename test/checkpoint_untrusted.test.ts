// Checkpoints are untrusted input: the configuration in a file's metadata is compared with the tensor shapes in
// its header before a model is built (a config saying hidden=5000 or latent=100000 used to allocate gigabytes
// first), the header's size and entry count are capped, and NaN or infinite weights are an error at load.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../index.ts';
import * as random from '../engine/random.ts';
import { encodeSafetensors, decodeSafetensors, decodeSafetensorsHeader, DEFAULT_HEADER_LIMITS } from '../engine/safetensors.ts';
import { VaeRun, DEFAULT_TRAIN, vaeConfigOf, evalVaeCheckpoint, type VaeTrainConfig } from '../models/vae/train.ts';
import { CategoricalVae, vaeParameterShapes } from '../models/vae/model.ts';
import { GumbelTreeLstm, treeLstmParameterShapes } from '../models/listops/model.ts';
import { ListopsRun, DEFAULT_LISTOPS, loadListopsModel, modelConfigOf } from '../models/listops/train.ts';
import { Vocab } from '../models/listops/data.ts';
import type { Mnist, MnistSplit } from '../models/vae/mnist.ts';

const dir = mkdtempSync(join(tmpdir(), 'gapgrad-untrusted-'));
const split: MnistSplit = { count: 20, rows: 28, cols: 28, images: new Float32Array(20 * 784).fill(0.5), labels: new Uint8Array(20) } as MnistSplit;
const data: Mnist = { train: split, test: split };
const tiny: VaeTrainConfig = { ...DEFAULT_TRAIN, latent: 2, categories: 3, batchSize: 10, epochs: 1, k: 2 };
let vaeCkpt: string, listopsBest: string;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** rewrite a safetensors file with edited metadata and/or tensors */
function rewrite(src: string, dst: string, edit: (t: ReturnType<typeof decodeSafetensors>) => void): string {
  const d = decodeSafetensors(readFileSync(src));
  edit(d);
  writeFileSync(dst, encodeSafetensors(d.tensors, d.metadata));
  return dst;
}
const rssMB = () => process.memoryUsage().rss / 2 ** 20;

beforeAll(async () => {
  const run = new VaeRun(tiny, data);
  vaeCkpt = join(dir, 'vae.safetensors');
  await run.saveCheckpoint(vaeCkpt);
  const cfg = { ...DEFAULT_LISTOPS, hidden: 8, embDim: 8, validPath: '/nonexistent/valid.tsv' };
  const lrun = new ListopsRun(cfg, Vocab.build([['[MAX', '1', '2', ']']]), []);
  listopsBest = join(dir, 'best.safetensors');
  await lrun.saveBest(listopsBest, 0.5);
});

describe('checkpoint config against header shapes', () => {
  it('the shape tables equal the parameters of built models', () => {
    const vcfg = vaeConfigOf(tiny);
    const vae = new CategoricalVae(vcfg, { key: random.key(0) });
    expect(vae.namedParameters().map(([n, p]) => [n, p.shape])).toEqual(vaeParameterShapes(vcfg));
    const tcfg = modelConfigOf({ ...DEFAULT_LISTOPS, hidden: 6, embDim: 5 }, 11);
    const tree = new GumbelTreeLstm(tcfg, { key: random.key(0) });
    expect(tree.namedParameters().map(([n, p]) => [n, p.shape])).toEqual(treeLstmParameterShapes(tcfg));
  });

  it('a VAE checkpoint whose config says latent=100000 is refused from its header (no 4 GB model built)', async () => {
    const bad = rewrite(vaeCkpt, join(dir, 'vae-latent.safetensors'), (d) => { d.metadata.config = JSON.stringify({ ...tiny, latent: 100000 }); });
    const before = rssMB();
    const err = await evalVaeCheckpoint(bad, { data }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/tensor 'model.enc3.weight' has shape \[6,256\], but its configuration \(latent=100000, categories=3\) needs \[300000,256\]/);
    expect(rssMB() - before).toBeLessThan(200);
    expect(() => VaeRun.readCheckpoint(vaeCkpt)).not.toThrow();
  });

  it('a ListOps best.safetensors whose config says hidden=5000 is refused from its header', () => {
    const bad = rewrite(listopsBest, join(dir, 'best-hidden.safetensors'), (d) => {
      d.metadata.config = JSON.stringify({ ...JSON.parse(d.metadata.config), hidden: 5000 });
    });
    const before = rssMB();
    expect(() => loadListopsModel(bad)).toThrow(/best-hidden.safetensors: tensor 'leaf.weight_ih' has shape \[32,8\], but its configuration \(hidden=5000, emb=8, vocab \d+\) needs \[20000,8\]/);
    expect(rssMB() - before).toBeLessThan(200);
    expect(loadListopsModel(listopsBest).model.hidden).toBe(8);
  });

  it('missing or extra tensors are named', () => {
    const bad = rewrite(vaeCkpt, join(dir, 'vae-extra.safetensors'), (d) => {
      d.tensors['model.extra'] = { dtype: 'float32', shape: [1], data: new Float32Array(1) };
      delete d.tensors['adam.v.3'];
    });
    expect(() => VaeRun.readCheckpoint(bad)).toThrow(/missing \[adam.v.3\], unexpected \[model.extra\]/);
  });

  it('NaN or infinite weights are an error at load', () => {
    for (const v of [NaN, Infinity]) {
      const bad = rewrite(vaeCkpt, join(dir, `vae-${v}.safetensors`), (d) => { (d.tensors['model.dec2.bias'].data as Float32Array)[7] = v; });
      expect(() => VaeRun.readCheckpoint(bad)).toThrow(new RegExp(`tensor 'model.dec2.bias' holds ${v} at flat index 7`));
    }
    const badBest = rewrite(listopsBest, join(dir, 'best-nan.safetensors'), (d) => { (d.tensors['query'].data as Float32Array)[0] = NaN; });
    expect(() => loadListopsModel(badBest)).toThrow(/tensor 'query' holds NaN/);
  });
});

describe('header caps', () => {
  /** a header-only file: `n` zero-size tensors */
  function zeroSizeTensors(n: number): Uint8Array {
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(`"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
    const json = new TextEncoder().encode(`{${parts.join(',')}}`);
    const out = new Uint8Array(8 + json.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  }

  it('a million zero-size tensors (a 59 MB header) are refused before the JSON is parsed', () => {
    const bytes = zeroSizeTensors(1_000_000);
    expect(bytes.length).toBeGreaterThan(DEFAULT_HEADER_LIMITS.maxHeaderBytes);
    const before = rssMB();
    expect(() => decodeSafetensorsHeader(bytes, 'big')).toThrow(/safetensors big: header length \d+ is unreasonably large \(at most 16777216 bytes are read\)/);
    expect(rssMB() - before).toBeLessThan(100);
  });

  it('more entries than the cap are refused even in a header under the size cap', () => {
    const bytes = zeroSizeTensors(DEFAULT_HEADER_LIMITS.maxEntries + 10);
    expect(bytes.length).toBeLessThan(DEFAULT_HEADER_LIMITS.maxHeaderBytes);
    expect(() => decodeSafetensorsHeader(bytes, 'many')).toThrow(/header lists 65546 entries; at most 65536 tensors are accepted/);
    expect(Object.keys(decodeSafetensorsHeader(zeroSizeTensors(1000)).entries)).toHaveLength(1000);
  });
});
