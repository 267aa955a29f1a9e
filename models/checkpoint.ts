// The training-checkpoint layout shared by the models: one tensor tree ('model.<name>', 'adam.<name>') and the
// optimizer's scalars as metadata (adam_step, lr).
//
// Training checkpoints are untrusted input. A model's loader reads the header first, compares the shapes its
// configuration implies with the shapes listed there (before building a model or decoding a byte of tensor
// data), then decodes and refuses NaN or infinite values.
import { decodeSafetensors, decodeSafetensorsHeader, type SafetensorsHeader } from '../engine/safetensors.ts';
import { tensor, type Tensor } from '../engine/tensor.ts';

/** A checkpoint file's bytes and its validated header (no tensor data decoded yet). */
export interface CheckpointBytes { path: string; bytes: Uint8Array; header: SafetensorsHeader }

/** A checkpoint's bytes with its header parsed (size and entry count capped, offsets validated); `path` names it in errors. */
export function checkpointFromBytes(bytes: Uint8Array, path: string): CheckpointBytes {
  return { path, bytes, header: decodeSafetensorsHeader(bytes, path) };
}

/**
 * The tensors a configuration implies, `[name, shape]` in parameter order, against the header: under `prefix`
 * the names and shapes must be exactly these; with `optimizer`, 'adam.m.<i>' and 'adam.v.<i>' must have the
 * i-th parameter's shape. `config` describes the configuration in errors (e.g. 'latent=30, categories=10').
 */
export function checkCheckpointShapes(c: CheckpointBytes, expected: [string, number[]][], config: string, opts: { prefix?: string; optimizer?: boolean } = {}): void {
  const prefix = opts.prefix ?? '';
  const want = new Map<string, number[]>(expected.map(([n, s]) => [prefix + n, s]));
  if (opts.optimizer) expected.forEach(([, s], i) => { want.set(`adam.m.${i}`, s); want.set(`adam.v.${i}`, s); });
  const have = c.header.entries;
  const missing = [...want.keys()].filter((n) => !(n in have));
  const extra = Object.keys(have).filter((n) => !want.has(n));
  if (missing.length || extra.length) {
    const list = (a: string[]) => `[${a.slice(0, 5).join(', ')}${a.length > 5 ? `, ... (${a.length})` : ''}]`;
    throw new Error(`checkpoint ${c.path}: its tensors do not match its configuration (${config}): missing ${list(missing)}, unexpected ${list(extra)}`);
  }
  for (const [n, s] of want) {
    if (have[n].shape.join() !== s.join()) {
      throw new Error(`checkpoint ${c.path}: tensor '${n}' has shape [${have[n].shape}], but its configuration (${config}) needs [${s}]`);
    }
  }
}

/** Decode the tensor data (after the shape checks) into tensors on `device`; NaN or infinite values are an error. */
export function checkpointTensors(c: CheckpointBytes, device?: string): Record<string, Tensor> {
  const { tensors } = decodeSafetensors(c.bytes, c.path);
  for (const [name, a] of Object.entries(tensors)) {
    if (a.dtype === 'int32') continue;
    const d = a.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) throw new Error(`checkpoint ${c.path}: tensor '${name}' holds ${d[i]} at flat index ${i}; a checkpoint's values must be finite`);
    }
  }
  const out: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(tensors)) out[name] = tensor(a.data, a.shape, { dtype: a.dtype, device });
  return out;
}

interface HasState { stateDict(): Record<string, Tensor>; loadStateDict(s: Record<string, Tensor>): void }
interface OptState { tensors: Record<string, Tensor>; step: number; lr: number }
interface HasOptState { stateDict(): OptState; loadStateDict(s: OptState): void }

/** A model and its optimizer as one tensor tree and metadata. */
export function trainingState(model: HasState, opt: HasOptState): { tensors: Record<string, Tensor>; meta: Record<string, string> } {
  const sd = opt.stateDict();
  const tensors: Record<string, Tensor> = {};
  for (const [n, p] of Object.entries(model.stateDict())) tensors[`model.${n}`] = p;
  for (const [n, t] of Object.entries(sd.tensors)) tensors[`adam.${n}`] = t;
  return { tensors, meta: { adam_step: String(sd.step), lr: String(sd.lr) } };
}

/** Inverse of trainingState: loads the model and optimizer from a checkpoint's tensors and metadata. */
export function restoreTrainingState(tensors: Record<string, Tensor>, meta: Record<string, string>, model: HasState, opt: HasOptState): void {
  const pick = (prefix: string) => Object.fromEntries(Object.entries(tensors).filter(([n]) => n.startsWith(prefix)).map(([n, t]) => [n.slice(prefix.length), t]));
  model.loadStateDict(pick('model.'));
  opt.loadStateDict({ tensors: pick('adam.'), step: Number(meta.adam_step), lr: Number(meta.lr) });
}
