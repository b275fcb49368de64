import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Tests that mount loop devices share the machine's loop driver: run files one at a time.
    fileParallelism: false,
    reporters: ['default', './tests/helpers/summary-reporter.ts'],
  },
});
