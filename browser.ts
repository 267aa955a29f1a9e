/**
 * `gapgrad` in browsers (the package's `browser` condition): everything the platform-neutral root exports, plus
 * {@link cpuThreads}, which says how many threads the CPU backend uses on this page and why.
 * @module browser
 */
export * from './index.ts';
export { cpuThreads } from './platform/browser.ts';
