// A heap inside one shared WebAssembly.Memory (the GEMM's): blocks that CPU tensors can live in, so
// that the wasm kernels read and write them in place instead of copying them in and out.
//
// Blocks are 64-byte aligned, found first-fit in an address-ordered free list (freed neighbours
// merge, a freed block at the top lowers the top), and the memory grows when none fits. Growing a
// shared memory never moves it: views made before a growth stay valid.
//
// Lifetime: a block is freed explicitly (release/drop), or, for views handed out with adopt(), when
// every such view has been garbage-collected (a FinalizationRegistry; its callbacks only run when the
// event loop turns, so code that never yields relies on the explicit path). Past limitBytes of live
// blocks, alloc() returns -1 and callers fall back to ordinary arrays. The memory always extends
// GUARD bytes past the top block: a kernel may read a few floats past an array's end.

const ALIGN = 64;
const PAGE = 65536;
// the memory always extends this far past the top block, so kernels may read a little past an array's end
const GUARD = 65536;

interface Held { arena: Arena; addr: number; views: number }

const registry = new FinalizationRegistry<Held>((h) => {
  if (--h.views === 0) h.arena.collected(h);
});

export class Arena {
  /** the most bytes of live blocks; alloc() past it returns -1 */
  limitBytes: number;
  private top: number;
  private readonly free: { at: number; size: number }[] = []; // sorted by address, never adjacent
  private readonly live = new Map<number, number>(); // address -> size in bytes
  private used = 0;
  private readonly own = new WeakSet<ArrayBufferLike>();
  private readonly held = new Map<number, Held>(); // adopted blocks, for drop()

  /** Manages the bytes of `memory` from `base` on (below it: the owner's own use). */
  constructor(readonly memory: WebAssembly.Memory, base: number, readonly maxBytes: number, limitBytes = 256 * 2 ** 20) {
    this.top = Math.ceil(base / ALIGN) * ALIGN;
    this.limitBytes = limitBytes;
  }

  /** Bytes of live blocks. */
  get usedBytes(): number { return this.used; }
  get liveBlocks(): number { return this.live.size; }

  /** A block of at least `bytes` bytes (its address), or -1 past limitBytes (unless `anyway`: working space a
   *  kernel cannot do without) or the memory's maximum. */
  alloc(bytes: number, anyway = false): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    if (!anyway && this.used + size > this.limitBytes) return -1;
    let addr = -1;
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f.size < size) continue;
      addr = f.at;
      if (f.size === size) this.free.splice(i, 1);
      else { f.at += size; f.size -= size; }
      break;
    }
    if (addr < 0) {
      if (this.top + size + GUARD > this.maxBytes) return -1;
      addr = this.top;
      this.top += size;
      this.ensure(this.top + GUARD);
    }
    this.live.set(addr, size);
    this.used += size;
    return addr;
  }

  /** Free the block at `addr` (an address alloc() returned). */
  release(addr: number): void {
    const size = this.live.get(addr);
    if (size === undefined) throw new Error(`arena: no live block at ${addr}`);
    this.live.delete(addr);
    this.held.delete(addr);
    this.used -= size;
    // insert into the address-ordered free list, merging with neighbours
    const fl = this.free;
    let lo = 0, hi = fl.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (fl[mid].at < addr) lo = mid + 1; else hi = mid; }
    let at = addr, sz = size, i = lo;
    if (i > 0 && fl[i - 1].at + fl[i - 1].size === at) { i--; at = fl[i].at; sz += fl[i].size; fl.splice(i, 1); }
    if (i < fl.length && at + sz === fl[i].at) { sz += fl[i].size; fl.splice(i, 1); }
    if (at + sz === this.top) this.top = at;
    else fl.splice(i, 0, { at, size: sz });
  }

  /** The size of the live block starting at `addr` (undefined if none). */
  sizeOf(addr: number): number | undefined { return this.live.get(addr); }

  /** The memory holds at least `bytes` bytes (grown if needed); false past its maximum. */
  ensure(bytes: number): boolean {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return true;
    if (bytes > this.maxBytes) return false;
    this.memory.grow(Math.ceil((bytes - have) / PAGE));
    return true;
  }

  /** A float32 view of n elements at byte address addr (the memory's current buffer). */
  f32(addr: number, n: number): Float32Array {
    const buf = this.memory.buffer;
    this.own.add(buf);
    return new Float32Array(buf, addr, n);
  }

  /** Views of the block at addr, one per entry of `lengths` at those float offsets, freed once all are
   *  garbage-collected (or at drop()). */
  adopt(addr: number, parts: [offsetFloats: number, length: number][]): Float32Array[] {
    const h: Held = { arena: this, addr, views: parts.length };
    this.held.set(addr, h);
    return parts.map(([o, n]) => {
      const v = this.f32(addr + 4 * o, n);
      registry.register(v, h, h);
      return v;
    });
  }

  /** Free an adopted block now (its views must no longer be used). */
  drop(addr: number): void {
    const h = this.held.get(addr);
    if (!h) throw new Error(`arena: no adopted block at ${addr}`);
    registry.unregister(h);
    this.release(addr);
  }

  /** @internal the registry's callback: every view of an adopted block was collected */
  collected(h: Held): void {
    if (this.held.get(h.addr) === h) this.release(h.addr);
  }

  /** The byte address of a's first element if a is a view into this memory, else -1. */
  addressOf(a: ArrayBufferView): number {
    return this.own.has(a.buffer) ? a.byteOffset : -1;
  }
}
