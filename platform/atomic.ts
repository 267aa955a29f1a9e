// Atomic file writes: write to a uniquely named temp file in the target's
// directory, fsync it, rename it over the target, then fsync the directory
// (where the platform allows). On any failure the temp file is removed and
// the previous target (if any) is left untouched.

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

function tempPathFor(path: string): string {
  const tag = `${process.pid}.${Date.now().toString(36)}.${randomBytes(6).toString('hex')}`;
  return join(dirname(path), `.${basename(path)}.${tag}.tmp`);
}

function fsyncDirectory(dir: string): void {
  // Directory fsync is not supported everywhere (e.g. Windows); best effort.
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // ignore
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
    }
  }
}

/** Test seams (fault injection); not needed in normal use. */
export type AtomicWriteHooks = {
  /** Called after the temp file is written and synced, just before rename. */
  beforeRename?: (tempPath: string) => void;
};

/**
 * Atomically replace `path` with `data`. Readers observe either the old
 * contents or the complete new contents, never a partial file.
 */
export function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  hooks?: AtomicWriteHooks,
): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const dir = dirname(path);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`writeFileAtomic: cannot write ${path}: the folder ${dir} does not exist`);
  }
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  let renamed = false;
  try {
    // 'wx': fail rather than clobber if the (random) name already exists.
    fd = openSync(tmp, 'wx', 0o644);
    let off = 0;
    while (off < bytes.byteLength) {
      off += writeSync(fd, bytes, off, bytes.byteLength - off);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    hooks?.beforeRename?.(tmp);
    renameSync(tmp, path);
    renamed = true;
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // ignore
      }
    }
    if (!renamed) {
      try {
        unlinkSync(tmp);
      } catch {
        // temp may never have been created
      }
    }
    const e = err as NodeJS.ErrnoException;
    throw new Error(`writeFileAtomic: failed to write ${path}: ${e.message}`, { cause: err });
  }
  fsyncDirectory(dirname(path));
}

/**
 * Atomically replace the folder `path` with one that `fill` writes: `fill` gets a fresh temp folder beside `path`
 * (files written into it should go through writeFileAtomic, which syncs them), which is then renamed into place.
 * Readers see the old folder or the new one, whole; on failure the temp folder is removed and `path` is untouched.
 * (Between the two renames of a replacement, `path` is briefly absent: the old folder is moved aside first.)
 */
export function replaceDirAtomic(path: string, fill: (tmp: string) => void): void {
  const tmp = tempPathFor(path);
  const old = tempPathFor(path);
  mkdirSync(tmp);
  try {
    fill(tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const had = existsSync(path);
  if (had) renameSync(path, old);
  try {
    renameSync(tmp, path);
  } catch (err) {
    if (had) renameSync(old, path);
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`replaceDirAtomic: failed to replace ${path}: ${(err as Error).message}`, { cause: err });
  }
  fsyncDirectory(dirname(path));
  if (had) rmSync(old, { recursive: true, force: true });
}
