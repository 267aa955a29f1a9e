// A TypeScript user's file, type-checked against the installed package's declarations (tsc --noEmit).
import { tensor, nn, optim, random, estimators, tidy, saveBytes, loadBytes, type Tensor, type Device } from 'gapgrad';
import { initWebGPU } from 'gapgrad/webgpu';

const device: Device = 'cpu';
const lin = new nn.Linear(4, 6, { device });
const opt = new optim.Adam(lin.parameters(), { lr: 1e-3 });
const x: Tensor = tensor([[1, 2, 3, 4]]);
const loss: number = tidy(() => {
  const z = estimators.sample(lin.forward(x).reshape([1, 2, 3]), { method: 'gst-p', tau: 0.5, key: random.key(3) });
  const l = z.sum();
  l.backward();
  opt.step();
  return l.item();
});
export async function roundTrip(): Promise<number> {
  const bytes: Uint8Array = await saveBytes(lin.stateDict());
  const { tensors } = loadBytes(bytes);
  return Object.keys(tensors).length + loss;
}
export const webgpu: typeof initWebGPU = initWebGPU;
