// The README's example: one training step of a categorical encoder with GST, then a checkpoint.
import { tensor, sum, nn, optim, random, estimators, tidy, save, load } from 'gapgrad';

nn.manualSeed(0);
const enc = new nn.Linear(784, 300); // PyTorch's default init
const opt = new optim.Adam(enc.parameters(), { lr: 1e-3 });
const x = tensor(new Float32Array(100 * 784).fill(0.5), [100, 784]);

const loss = tidy(() => {
  const logits = enc.forward(x).reshape([100, 30, 10]);
  const z = estimators.sample(logits, { method: 'gst-1.0', tau: 1, key: random.key(1) });
  const l = sum(z.mul(logits.softmax(-1)));
  l.backward();
  opt.step();
  opt.zeroGrad();
  return l.item();
});
await save('/tmp/enc.safetensors', enc.stateDict());
const back = load('/tmp/enc.safetensors');
console.log(`loss ${loss.toFixed(4)}; saved ${Object.keys(back.tensors).join(', ')}`);
