// Tensors to and from safetensors files on Node (atomic writes; corrupt files raise).
import type { Tensor, Device } from '../engine/tensor.ts';
import { tensorsToArrays, arraysToTensors } from '../engine/serialize.ts';
import { saveSafetensors, loadSafetensors } from './safetensors_file.ts';

/** Write tensors (read from any device) and string metadata to a safetensors file at `path`, atomically. */
export async function save(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  saveSafetensors(path, await tensorsToArrays(tensors, 'save'), metadata);
}

/** Read a safetensors file into tensors on `opts.device` (default: the default device). */
export function load(path: string, opts: { device?: Device } = {}): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = loadSafetensors(path);
  return { tensors: arraysToTensors(tensors, opts.device), metadata };
}
