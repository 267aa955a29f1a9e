// Checkpoint files on Node: the bytes read, then parsed and checked by ./checkpoint.ts.
import { readFileSync } from 'node:fs';
import { checkpointFromBytes, type CheckpointBytes } from './checkpoint.ts';

/** Read a checkpoint and parse its header (size and entry count capped, offsets validated). */
export function readCheckpointHeader(path: string): CheckpointBytes {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(err.code === 'ENOENT' ? `checkpoint ${path}: file not found` : `checkpoint ${path}: cannot read (${err.message})`, { cause: e });
  }
  return checkpointFromBytes(bytes, path);
}
