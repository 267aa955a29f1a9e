// Without the optional peer `webgpu`: initWebGPU() fails with what to install, and the CPU path still works.
import { initWebGPU, tensor } from 'gapgrad';

let message = null;
try {
  await initWebGPU();
} catch (e) {
  message = e.message;
}
const y = tensor([1, 2, 3]).mul(2).sum().item();
console.log(JSON.stringify({ message, y }));
