// The matmul shapes of one MNIST-VAE training step (batch 100), forward and the transposed products of
// backward: every matmul benchmark (gapgrad, TF.js, WebGPU) measures these.
export interface MatmulShape { name: string; m: number; n: number; k: number; tA: boolean; tB: boolean }

export const VAE_MATMUL_SHAPES: MatmulShape[] = [
  { name: '(100x784)@(784x512)', m: 100, n: 512, k: 784, tA: false, tB: false },
  { name: '(100x512)@(512x256)', m: 100, n: 256, k: 512, tA: false, tB: false },
  { name: '(100x256)@(256x300)', m: 100, n: 300, k: 256, tA: false, tB: false },
  { name: 'X^T@G  m784 k100 n512', m: 784, n: 512, k: 100, tA: true, tB: false },
  { name: 'H^T@G  m512 k100 n256', m: 512, n: 256, k: 100, tA: true, tB: false },
  { name: 'G@W^T  m100 k512 n784', m: 100, n: 784, k: 512, tA: false, tB: true },
  { name: 'G@W^T  m100 k256 n512', m: 100, n: 512, k: 256, tA: false, tB: true },
];
