// save/load of named tensors in the safetensors format, as bytes (every platform). Files on Node: platform/files.ts.
import { Tensor, tensor, type Device } from './tensor.ts';
import { encodeSafetensors, decodeSafetensors, type NamedArray } from './safetensors.ts';

async function toArrays(tree: Record<string, Tensor>, where: string): Promise<Record<string, NamedArray>> {
  if (tree === null || typeof tree !== 'object') throw new Error(`${where}: argument 'tensors' must be an object of named Tensors`);
  const arrays: Record<string, NamedArray> = {};
  for (const [name, t] of Object.entries(tree)) {
    if (!(t instanceof Tensor)) throw new Error(`${where}: entry '${name}' is not a Tensor`);
    arrays[name] = { dtype: t.dtype, shape: t.shape.slice(), data: await t.data() };
  }
  return arrays;
}

/** @internal the named arrays of a tensor tree (read from any device), for file writers */
export const tensorsToArrays = toArrays;

/**
 * Encode tensors (read from any device) and string metadata as safetensors bytes.
 *
 * @example
 * const bytes = await saveBytes({ w: model.weight }, { epoch: '3' });
 */
export async function saveBytes(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Promise<Uint8Array> {
  return encodeSafetensors(await toArrays(tensors, 'saveBytes'), metadata);
}

/** @internal named arrays to tensors on a device */
export function arraysToTensors(arrays: Record<string, NamedArray>, device?: Device): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, a] of Object.entries(arrays)) out[name] = tensor(a.data, a.shape, { dtype: a.dtype, device });
  return out;
}

/**
 * Decode safetensors bytes (validated: a corrupt or truncated file raises) into tensors on `device`.
 *
 * @param bytes the file's contents
 * @param opts.device where the tensors live (default: the default device)
 * @param opts.source a name for error messages (e.g. the file path)
 */
export function loadBytes(bytes: Uint8Array, opts: { device?: Device; source?: string } = {}): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = decodeSafetensors(bytes, opts.source ?? 'bytes');
  return { tensors: arraysToTensors(tensors, opts.device), metadata };
}
