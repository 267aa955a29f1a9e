import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `import ... from 'gapgrad'` (a user's view, e.g. test/fixtures) resolves to the sources, as tsc does (tsconfig customConditions)
  resolve: { conditions: ['gapgrad-source', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['gapgrad-source', 'node', 'import', 'default'], externalConditions: ['gapgrad-source', 'node'] } },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
