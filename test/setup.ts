// Every test file runs with the Node platform installed (environment settings, worker threads, files).
import '../platform/node.ts';
