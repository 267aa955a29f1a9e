// The WebGPU backend's kernel choices derive from one declared property of the adapter (isSoftware) and
// the explicit settings, nothing else (backends/webgpu/choices.ts). No device is needed to check that.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { configure, resetConfiguration, setEnvironmentSource } from '../engine/config.ts';
import { chooseKernels } from '../backends/webgpu/choices.ts';

describe('WebGPU kernel choices', () => {
  // only configure() counts here: GAPGRAD_WEBGPU_* in the environment of the test run must not change the defaults
  beforeEach(() => setEnvironmentSource(null));
  afterEach(() => {
    resetConfiguration();
    setEnvironmentSource((name) => process.env[name]);
  });

  it('software adapters: uniform-block matmul, texture inputs, float32 division, vec4 stores, Adam on textures', () => {
    const c = chooseKernels(true);
    expect(c.matmulPlan.kind).toBe('ubo');
    expect([c.texInputs, c.fastDiv, c.vecStores, c.texAdam]).toEqual([true, true, true, true]);
  });

  it('other adapters: shared-memory tiled matmul and none of the software-adapter paths', () => {
    const c = chooseKernels(false);
    expect(c.matmulPlan.kind).toBe('tiled');
    expect([c.texInputs, c.fastDiv, c.vecStores, c.texAdam]).toEqual([false, false, false, false]);
  });

  it('a forced matmul kernel changes the matmul only; the settings turn the software paths off, never on', () => {
    configure({ webgpuMatmul: 'tiled' });
    const s = chooseKernels(true);
    expect(s.matmulPlan.kind).toBe('tiled');
    expect([s.texInputs, s.fastDiv, s.vecStores, s.texAdam]).toEqual([true, true, true, true]);
    configure({ webgpuMatmul: 'ubo', webgpuTexInputs: true, webgpuFastDiv: true });
    const h = chooseKernels(false);
    expect(h.matmulPlan.kind).toBe('ubo');
    expect([h.texInputs, h.fastDiv, h.vecStores, h.texAdam]).toEqual([false, false, false, false]);
    configure({ webgpuTexInputs: false, webgpuFastDiv: false });
    const off = chooseKernels(true);
    expect([off.texInputs, off.fastDiv]).toEqual([false, false]);
  });

  it('each backend gets its own plan object (changing one does not change the defaults)', () => {
    const a = chooseKernels(true);
    a.matmulPlan.tm = 99;
    a.uboTile.tm = 99;
    const b = chooseKernels(true);
    expect(b.matmulPlan.tm).toBe(8);
    expect(b.uboTile.tm).toBe(20);
  });
});
