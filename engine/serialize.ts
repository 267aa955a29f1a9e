// save/load of named tensors as safetensors files (atomic writes; corrupt files raise).
import { Tensor, tensor, type Device } from './tensor.ts';
import { saveSafetensors, loadSafetensors, type NamedArray } from './safetensors.ts';

/** Write tensors (read from any device) and string metadata to `path`, atomically. */
export async function save(path: string, tree: Record<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  const arrays: Record<string, NamedArray> = {};
  for (const [name, t] of Object.entries(tree)) {
    if (!(t instanceof Tensor)) throw new Error(`save: entry '${name}' is not a Tensor`);
    arrays[name] = { dtype: t.dtype, shape: t.shape.slice(), data: await t.data() };
  }
  saveSafetensors(path, arrays, metadata);
}

/** Read a safetensors file into tensors on `device`. */
export function load(path: string, opts: { device?: Device } = {}): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = loadSafetensors(path);
  const out: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(tensors)) out[name] = tensor(a.data, a.shape, { dtype: a.dtype, device: opts.device });
  return { tensors: out, metadata };
}

interface HasState { stateDict(): Record<string, Tensor>; loadStateDict(s: Record<string, Tensor>): void }
interface OptState { tensors: Record<string, Tensor>; step: number; lr: number }
interface HasOptState { stateDict(): OptState; loadStateDict(s: OptState): void }

/**
 * A model and its optimizer as one tensor tree ('model.<name>', 'adam.<name>') and the optimizer's
 * scalars as metadata (adam_step, lr): the shared part of every training checkpoint.
 */
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
