// Messages between the demo page (main.ts) and its training worker (worker.ts).
import type { VaeTrainConfig } from '../../models/vae/run.ts';

export interface Conformance { name: string; ok: boolean; worst: number; error?: string; /** the sample's argmax per row (estimator checks) */ index?: number[] }

export type FromPage =
  | { kind: 'start'; cfg: Partial<VaeTrainConfig>; steps?: number; every?: number; threads?: 1 | 2 }
  | { kind: 'stop' }
  | { kind: 'checkpoint' }
  | { kind: 'conformance' };

export type ToPage =
  | { kind: 'methods'; methods: string[] }
  | { kind: 'started'; device: string; adapter: string; threads: number; threadsReason: string; stepsPerEpoch: number }
  | { kind: 'steps'; step: number; losses: number[]; msPerStep: number }
  | { kind: 'pictures'; images: Float32Array; recon: Float32Array; n: number; samples: Float32Array }
  | { kind: 'finished'; losses: number[]; seconds: number; contention: unknown }
  | { kind: 'checkpoint'; bytes: Uint8Array }
  | { kind: 'conformance'; results: Conformance[] }
  | { kind: 'error'; message: string };
