// Adam program: the fused PyTorch update of parameters, first and second moments in one dispatch, on
// storage buffers or (software adapters) reading the four operands through texture copies.
import type { Buf, AdamHyper } from '../../../engine/backend.ts';
import { HEADER, GID, WG, LIN_W, binding } from '../wgsl.ts';
import { type GpuRecorder, fbits } from '../recorder.ts';
import type { KernelChoices } from '../choices.ts';

// ------------------------------------------------------------------ WGSL
/**
 * Fused Adam (PyTorch rule). Params: [0] n, [1] row stride, [2] beta1, [3] 1-beta1, [4] beta2, [5] 1-beta2,
 * [6] eps, [7] weight decay, [8] lr / bc1, [9] sqrt(bc2)   (floats as bits)
 */
export function adamSource(): string {
  return HEADER + binding(1, 'PV', 'f32', true) + binding(2, 'GV', 'f32', false) + binding(3, 'MV', 'f32', true) + binding(4, 'VV', 'f32', true) + `@compute @workgroup_size(${WG}) fn main(${GID}) {
  let i = g.x + g.y * P(1u);
  if (i >= P(0u)) { return; }
  let p = PV[i];
  var gi = GV[i];
  let wd = PF(7u);
  if (wd != 0.0) { gi = gi + wd * p; }
  let mi = PF(2u) * MV[i] + PF(3u) * gi;
  let vi = PF(4u) * VV[i] + PF(5u) * gi * gi;
  MV[i] = mi; VV[i] = vi;
  PV[i] = p - PF(8u) * mi / (sqrt(vi) / PF(9u) + PF(6u));
}
`;
}

/**
 * Adam for software adapters: the four operands are read through linear textures (copies of the
 * buffers, see matmulUboSource: storage-buffer loads are scalar loops on llvmpipe, texel fetches are
 * vectorised); each invocation updates `per` consecutive texels (4 elements each; the last invocation
 * repeats the last texel where the count does not divide). Params as adamSource, with [0] the number
 * of texels and [10] the number of elements.
 */
export function adamTexSource(per = 1): string {
  // the outputs as vec4s: whole-vec4 stores (the last one may write into the slab's padding)
  let s = HEADER + binding(1, 'PV', 'vec4<f32>', true) + binding(2, 'MV', 'vec4<f32>', true) + binding(3, 'VV', 'vec4<f32>', true);
  ['PT', 'GT', 'MT', 'VT'].forEach((nm, j) => { s += `@group(0) @binding(${4 + j}) var ${nm}: texture_2d<f32>;\n`; });
  s += `fn ld(T: texture_2d<f32>, t: u32) -> vec4<f32> { return textureLoad(T, vec2<u32>(t % ${LIN_W}u, t / ${LIN_W}u), 0); }
@compute @workgroup_size(${WG}) fn main(${GID}) {
  let i0 = (g.x + g.y * P(1u)) * ${per}u;
  let nt = P(0u);
  if (i0 >= nt) { return; }
  let wd = PF(7u);
`;
  for (let e = 0; e < per; e++) {
    s += `  {
    let i = min(i0 + ${e}u, nt - 1u);
    let p = ld(PT, i);
    var gi = ld(GT, i);
    if (wd != 0.0) { gi = gi + wd * p; }
    let mi = PF(2u) * ld(MT, i) + PF(3u) * gi;
    let vi = PF(4u) * ld(VT, i) + PF(5u) * gi * gi;
    let np = p - PF(8u) * mi / (sqrt(vi) / PF(9u) + vec4<f32>(PF(6u)));
    MV[i] = mi; VV[i] = vi; PV[i] = np;
  }
`;
  }
  return s + '}\n';
}

// ------------------------------------------------------------------ dispatch
export function adamUpdate(gpu: GpuRecorder, ch: KernelChoices, p: Buf, g: Buf, m: Buf, v: Buf, hp: AdamHyper): void {
  const { lr, beta1, beta2, eps, weightDecay, step } = hp;
  const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
  const n = p.size;
  const texels = Math.ceil(n / 4);
  if (ch.texAdam && n > 0 && gpu.fitsLinear(n)) {
    // operands through texture copies (see adamTexSource)
    const per = 4; // texels per invocation (fewer invocations: ~5-10% faster on llvmpipe)
    const kt = gpu.kernel(`adamtex|${per}`, () => ({ src: adamTexSource(per), sig: 'wwwtttt' }));
    const texs = [p, g, m, v].map((b) => gpu.linearTexture(gpu.slab(b), texels));
    const [gx, gy, rs] = gpu.grid(Math.ceil(texels / per));
    gpu.dispatch(kt, [gpu.slab(p), gpu.slab(m), gpu.slab(v), ...texs],
      [texels, rs, fbits(beta1), fbits(1 - beta1), fbits(beta2), fbits(1 - beta2), fbits(eps), fbits(weightDecay), fbits(lr / bc1), fbits(Math.sqrt(bc2)), n],
      gx, gy);
    for (const t of texs) gpu.releaseTex(t);
    return;
  }
  const k = gpu.kernel('adam', () => ({ src: adamSource(), sig: 'wrww' }));
  const [gx, gy, rs] = gpu.grid(n);
  gpu.dispatch(k, [gpu.slab(p), gpu.slab(g), gpu.slab(m), gpu.slab(v)],
    [n, rs, fbits(beta1), fbits(1 - beta1), fbits(beta2), fbits(1 - beta2), fbits(eps), fbits(weightDecay), fbits(lr / bc1), fbits(Math.sqrt(bc2))],
    gx, gy);
}
