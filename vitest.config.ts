import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'tests/**/*.test.ts',
      'core/**/*.test.ts',
      'src/**/*.test.ts',
      'compiler/**/*.test.ts',
      'runtime/**/*.test.ts',
      'grammar/**/*.test.ts',
    ],
    testTimeout: 60_000,
    pool: 'forks',
    setupFiles: ['tests/setup.ts'],
  },
});
