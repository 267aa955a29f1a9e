// The CPU backend's second thread, as the platform provides it. The backend's core never imports a platform
// module: on Node, platform/node.ts installs worker_threads here; where nothing is installed (a plain browser
// bundle, for now) the backend runs on one thread and says so (threadPlatform() is null).

/** A started worker thread. */
export interface WorkerThread {
  /** send a structured-cloneable message (the GEMM shares WebAssembly modules this way) */
  postMessage(msg: unknown): void;
  /** called once if the thread fails to start, throws, or exits */
  onFailure(fn: () => void): void;
  /** stop the thread */
  terminate(): Promise<void>;
}

/** What a platform offers the CPU backend. */
export interface ThreadPlatform {
  /** a name for messages ('node worker_threads', ...) */
  readonly name: string;
  /** logical cores this process may use */
  cores(): number;
  /**
   * Start a worker that evaluates `body`, a self-contained script. In its scope the platform defines:
   * `workerData` (the `data` given here), `post(msg)` (a message to the starting thread) and `poll()` (the
   * next message from the starting thread, or undefined; never blocks).
   */
  spawn(body: string, data: unknown): WorkerThread;
  /** turn on relaxed SIMD for WebAssembly process-wide, where the platform can (Node: a V8 flag) */
  enableRelaxedSimd?(): void;
}

let current: ThreadPlatform | null = null;

/** Install the platform's threads (platform/node.ts does on Node). */
export function setThreadPlatform(p: ThreadPlatform | null): void { current = p; }

/** The installed platform, or null (one thread). */
export function threadPlatform(): ThreadPlatform | null { return current; }
