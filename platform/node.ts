// The Node platform: what the engine and backends need from Node, installed once on import.
//  - settings: GAPGRAD_* environment variables are read through engine/config.ts;
//  - threads: the CPU backend's GEMM worker runs in a worker_threads Worker (backends/cpu/threads.ts).
// Importing the package's Node entry (node.ts), the CLI, or the test setup installs it.
import { openSync, readSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { setEnvironmentSource } from '../engine/config.ts';
import { setThreadPlatform, type WorkerThread } from '../backends/cpu/threads.ts';

setEnvironmentSource((name) => process.env[name]);

// defines what backends/cpu/threads.ts promises in a worker's scope: workerData, post(), poll()
const PRELUDE = `
const { workerData, parentPort, receiveMessageOnPort } = require('node:worker_threads');
const post = (m) => parentPort.postMessage(m);
const poll = () => { const m = receiveMessageOnPort(parentPort); return m ? m.message : undefined; };
const sleep = (i32, index, value) => { Atomics.wait(i32, index, value); };
`;

// kept open: a positioned read is ~6 us, against ~30 us for readFileSync (open, stat, read, close)
let loadavgFd = -1;
const loadavgBuf = Buffer.alloc(128);
function runnableNow(): number | undefined {
  try {
    if (loadavgFd < 0) loadavgFd = openSync('/proc/loadavg', 'r');
    const n = readSync(loadavgFd, loadavgBuf, 0, loadavgBuf.length, 0);
    const r = Number(loadavgBuf.toString('latin1', 0, n).split(' ')[3]?.split('/')[0]);
    return Number.isInteger(r) && r > 0 ? r : undefined;
  } catch {
    return undefined;
  }
}

setThreadPlatform({
  name: 'node worker_threads',
  cores: () => os.availableParallelism(),
  spawn(body: string, data: unknown): WorkerThread {
    const w = new Worker(PRELUDE + body, { eval: true, workerData: data });
    w.unref(); // an idle worker never keeps the process alive
    return {
      postMessage: (m) => w.postMessage(m),
      onFailure: (fn) => { w.on('error', fn); w.on('exit', fn); },
      terminate: async () => { await w.terminate(); },
    };
  },
  // Node rejects V8 flags in a Worker's execArgv; the flag is process-wide (see cli/node_flags.ts)
  enableRelaxedSimd: () => v8.setFlagsFromString('--experimental-wasm-relaxed-simd'),
  // /proc/loadavg: "0.52 0.58 0.59 2/467 12345", runnable/total scheduling entities; Linux only
  ...(process.platform === 'linux' ? { runnable: runnableNow } : {}),
});
