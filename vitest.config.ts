import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/vm/cases holds VM tests for `cairn test` (run by test/vm/driver.test.ts), not vitest files.
    exclude: ['dist/**', 'node_modules/**', 'test/vm/cases/**'],
    testTimeout: 60_000,
  },
});
