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
