import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/vm/cases holds VM tests for `cairn test` (run by test/vm/driver.test.ts), not vitest files.
    exclude: ['dist/**', 'node_modules/**', 'test/vm/cases/**'],
    testTimeout: 60_000,
    // Hooks remove work trees of whole systems and stop VMs: on a loaded 2-core machine that takes
    // far longer than vitest's 10 s default, and a hook timing out fails a suite whose tests passed.
    hookTimeout: 300_000,
    teardownTimeout: 300_000,
  },
});
