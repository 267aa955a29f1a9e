// The training-checkpoint layout shared by the models: one tensor tree ('model.<name>', 'adam.<name>') and the
// optimizer's scalars as metadata (adam_step, lr).
import type { Tensor } from '../engine/tensor.ts';

interface HasState { stateDict(): Record<string, Tensor>; loadStateDict(s: Record<string, Tensor>): void }
interface OptState { tensors: Record<string, Tensor>; step: number; lr: number }
interface HasOptState { stateDict(): OptState; loadStateDict(s: OptState): void }

/** A model and its optimizer as one tensor tree and metadata. */
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
