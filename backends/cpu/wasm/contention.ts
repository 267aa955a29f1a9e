// When the 2-thread GEMM runs jobs on the calling thread alone because the cores are oversubscribed (see PREEMPT_MS
// in ./gemm.ts for the signs it counts), and when it stops. Pure state, no clocks of its own: the caller passes
// performance.now() ms.
//
// Starting a backoff: evidence aged per occasion (a product or split that could use the worker), not per
// millisecond; a sign the caller confirmed (the platform's run queue showed no core free for the worker) counts
// double. (Confirmed signs alone started backoffs too often on a quiet machine: a sporadic sign comes with another
// thread running by its nature, and 17-24 short backoffs in 5 s cost the ListOps step its 2-thread gain.) Under a busy
// neighbour nearly every occasion brings a sign; on a quiet machine sporadic signs (V8's compiler and GC threads,
// short bursts of other processes) come once in hundreds of occasions. A rule aged by time missed the busy case
// whenever occasions were sparse (6 ms products between other work: a sign every 20-100 ms never reached its
// level), and two threads stayed 1.1-1.6x slower than one there.
//
// Ending it: with probes (where the platform counts runnable threads), the caller asks whether a core is free,
// probeMs after an answer that found none, doubling up to probeMaxMs, and `fast` free answers in a row end the
// backoff. A probe is one read of the count, never a job; yet reading it every 25 ms under load put the ListOps
// step at 1.015-1.025x of one thread, where a backoff without probes ran at 0.99-1.00x (more than the reads' time). Without, the backoff lasts minMs, doubled when the next starts within resetMs, up to maxMs, and ends
// by using the worker again (which costs that job a time slice when the neighbour is still there). Either way a
// sign within `watch` occasions after a backoff starts the next one at once. A backoff with probes ends after maxMs
// too: the count can be the whole host's (/proc/loadavg in a container, or a process pinned to fewer cores than
// the host has), whose busy cores may not be this process's.

/** The policy's constants (see DEFAULT_POLICY). */
export interface ContentionSettings {
  /** evidence is multiplied by this at each occasion */
  decay: number;
  /** evidence that starts a backoff */
  level: number;
  /** the first probe comes this long after a backoff starts; without probes, the first backoff's length (ms) */
  minMs: number;
  /** the longest backoff (with probes too: a count of runnable threads can mislead, see below), and without probes,
   *  how soon the next must start for the length to double (ms) */
  maxMs: number;
  resetMs: number;
  /** with probes: the next probe after one that found no core free (ms), doubling up to probeMaxMs, and the free
   *  answers in a row that end a backoff */
  probeMs: number;
  probeMaxMs: number;
  fast: number;
  /** after a backoff, a sign within this many occasions starts the next one at once */
  watch: number;
}

// decay 0.75, level 3: about five signs in five consecutive occasions, or two waits (weight 2) or two confirmed signs
// in a row; the first probe after 10 ms (a backoff on a quiet machine then ends within about 10 ms)
export const DEFAULT_POLICY: ContentionSettings = { decay: 0.75, level: 3, minMs: 10, maxMs: 2000, resetMs: 5000, probeMs: 25, probeMaxMs: 400, fast: 2, watch: 4 };

/** The backoff state machine: split (evidence below the level); solo (backed off); watched (the first `watch`
 *  occasions after a backoff, when one sign starts the next). */
export class ContentionPolicy {
  /** all signs seen, counted or not (during a backoff they are ignored) */
  events = 0;
  backoffs = 0;
  /** probes answered, and those that found no core free */
  probes = 0;
  busyProbes = 0;
  private inBackoff = false;
  private backoffAt = -Infinity;
  /** without probes: the current backoff's length and end */
  private lengthMs = 0;
  private until = 0;
  private lastMs = 0;
  private nextProbeAt = 0;
  private probeGap = 0;
  private fastRun = 0;
  private evidence = 0;
  /** occasions since the last backoff ended (watched while <= s.watch) */
  private since = Infinity;

  /** `probing`: the caller answers probes (see probeDue); else backoffs end by time. */
  constructor(readonly probing: boolean, private readonly s: ContentionSettings = DEFAULT_POLICY) {}

  /** Whether jobs run on the calling thread alone at `now`. */
  solo(now: number): boolean {
    if (this.inBackoff && now >= (this.probing ? this.backoffAt + this.s.maxMs : this.until)) this.end(now);
    return this.inBackoff;
  }

  /** The current backoff's length so far, or the last one's (ms). */
  backoffMs(now: number): number { return this.solo(now) ? now - this.backoffAt : this.lastMs; }

  /** An occasion to use the worker at `now`: true if it may be used (not backed off). Ages the evidence. */
  occasion(now: number): boolean {
    if (this.solo(now)) return false;
    this.evidence *= this.s.decay;
    if (this.since < Infinity) this.since++;
    return true;
  }

  /** A sign of oversubscribed cores, of this weight, at `now`; `confirmed` (no core was free for the worker at the
   *  time) counts double. */
  sign(now: number, weight: number, confirmed = false): void {
    this.events++;
    if (this.solo(now)) return; // left over from before the backoff (a worker that was still spinning)
    if (this.since <= this.s.watch) { this.start(now); return; }
    this.evidence += confirmed ? 2 * weight : weight;
    if (this.evidence >= this.s.level) this.start(now);
  }

  /** Whether the caller should probe now (backed off, with probes, and one is due). */
  probeDue(now: number): boolean { return this.probing && this.inBackoff && now >= this.nextProbeAt; }

  /** A probe's answer at `now`: whether a core was free for the worker. */
  probed(now: number, free: boolean): void {
    if (!this.probing || !this.inBackoff) return;
    this.probes++;
    if (!free) {
      this.busyProbes++;
      this.fastRun = 0;
      this.nextProbeAt = now + this.probeGap;
      this.probeGap = Math.min(this.s.probeMaxMs, 2 * this.probeGap);
    } else if (++this.fastRun < this.s.fast) {
      this.nextProbeAt = now;
    } else {
      this.end(now);
    }
  }

  private start(now: number): void {
    this.backoffs++;
    this.lengthMs = now - this.backoffAt > this.s.resetMs ? this.s.minMs : Math.min(this.s.maxMs, 2 * this.lengthMs);
    this.inBackoff = true;
    this.backoffAt = now;
    this.until = now + this.lengthMs;
    this.nextProbeAt = now + this.s.minMs;
    this.probeGap = this.s.probeMs;
    this.fastRun = 0;
    this.evidence = 0;
  }

  private end(now: number): void {
    this.inBackoff = false;
    this.lastMs = now - this.backoffAt;
    this.since = 0;
  }
}
