// Helpers for the strided views that backends receive (engine/backend.ts).

/**
 * Merge adjacent axes that every view walks contiguously and drop size-1 axes, so most strided
 * loops become one flat loop. A shape with no axis left (all ones, or rank 0) returns shape [].
 */
export function collapse(shape: readonly number[], views: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStr: number[][] = views.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && views.every((s, i) => outStr[i][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      views.forEach((s, i) => { outStr[i][last] = s[d]; });
    } else {
      outShape.push(shape[d]);
      views.forEach((s, i) => outStr[i].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStr };
}
