// safetensors files on Node: the byte format is engine/safetensors.ts; here only reading and atomic writing.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic.ts';
import { encodeSafetensors, decodeSafetensors, type NamedArray } from '../engine/safetensors.ts';

/** Atomically write a safetensors file. Validation happens before any I/O. */
export function saveSafetensors(
  path: string,
  tensors: Record<string, NamedArray>,
  metadata?: Record<string, string>,
): void {
  let bytes: Uint8Array;
  try {
    bytes = encodeSafetensors(tensors, metadata);
  } catch (e) {
    throw new Error(`saveSafetensors ${path}: ${(e as Error).message}`, { cause: e });
  }
  writeFileAtomic(path, bytes);
}

/** Read and validate a safetensors file. */
export function loadSafetensors(path: string): {
  tensors: Record<string, NamedArray>;
  metadata: Record<string, string>;
} {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`safetensors ${path}: file not found`, { cause: e });
    throw new Error(`safetensors ${path}: cannot read file (${err.message})`, { cause: e });
  }
  return decodeSafetensors(bytes, path);
}
