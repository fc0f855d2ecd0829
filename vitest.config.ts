import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // every test lives under tests/, one folder per kind
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    setupFiles: ['tests/setup.ts'],
  },
});
