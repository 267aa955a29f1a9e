// A user's plain-JavaScript program against the installed package (run with plain `node`, no TypeScript loader):
// a categorical encoder trained 5 steps with an estimator on the CPU, saved and loaded as safetensors.
import { tensor, nn, optim, random, estimators, tidy, save, load, binaryCrossEntropyWithLogits } from 'gapgrad';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

nn.manualSeed(0);
const enc = new nn.Linear(16, 4 * 3);
const dec = new nn.Linear(4 * 3, 16);
const opt = new optim.Adam([...enc.parameters(), ...dec.parameters()], { lr: 1e-2 });
const x = tensor(Float32Array.from({ length: 8 * 16 }, (_, i) => (i * 7) % 5 / 4), [8, 16]);
const losses = [];
for (let step = 0; step < 5; step++) {
  losses.push(tidy(() => {
    const logits = enc.forward(x).reshape([8, 4, 3]);
    const z = estimators.sample(logits, { method: 'gst-1.0', tau: 1, key: random.foldIn(random.key(1), step) });
    const loss = binaryCrossEntropyWithLogits(dec.forward(z.reshape([8, 12])), x);
    loss.backward();
    opt.step();
    opt.zeroGrad();
    return loss.item();
  }));
}
const dir = mkdtempSync(join(tmpdir(), 'gapgrad-app-'));
await save(join(dir, 'enc.safetensors'), enc.stateDict(), { steps: '5' });
const back = load(join(dir, 'enc.safetensors'));
const same = Object.entries(enc.stateDict()).every(([n, t]) => {
  const a = t.dataSync(), b = back.tensors[n].dataSync();
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
});
console.log(JSON.stringify({ losses, same, names: Object.keys(back.tensors).sort(), meta: back.metadata }));
