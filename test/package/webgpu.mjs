// initWebGPU from the installed package (with the optional peer `webgpu` installed): the same 3 training steps on
// the CPU and on WebGPU; prints the adapter and both loss sequences.
import { tensor, nn, optim, random, estimators, tidy, initWebGPU, binaryCrossEntropyWithLogits } from 'gapgrad';

const gpu = await initWebGPU();
async function run(device) {
  nn.manualSeed(0);
  const enc = new nn.Linear(16, 12, { device });
  const dec = new nn.Linear(12, 16, { device });
  const opt = new optim.Adam([...enc.parameters(), ...dec.parameters()], { lr: 1e-2 });
  const x = tensor(Float32Array.from({ length: 8 * 16 }, (_, i) => (i * 7) % 5 / 4), [8, 16], { device });
  const losses = [];
  for (let step = 0; step < 3; step++) {
    const loss = tidy(() => {
      const logits = enc.forward(x).reshape([8, 4, 3]);
      const z = estimators.sample(logits, { method: 'gst-1.0', tau: 1, key: random.foldIn(random.key(1), step) });
      const l = binaryCrossEntropyWithLogits(dec.forward(z.reshape([8, 12])), x);
      l.backward();
      opt.step();
      opt.zeroGrad();
      return l;
    });
    losses.push((await loss.data())[0]);
    loss.dispose();
  }
  return losses;
}
console.log(JSON.stringify({ adapter: gpu.adapterName, software: gpu.isSoftware, cpu: await run('cpu'), webgpu: await run('webgpu') }));
