import { defineConfig } from 'vitest/config';
import Sequencer from './test/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/vm/cases holds VM tests for `cairn test` (run by test/vm/driver.test.ts), not vitest files.
    exclude: ['dist/**', 'node_modules/**', 'test/vm/cases/**'],
    // vitest's default (cores - 1) is one worker on a 2-core machine: the suite would run file by
    // file. Two workers keep both cores busy; QEMU guests are limited machine-wide apart from this
    // (test/vm/qemu-slots.ts), two at once.
    maxWorkers: 2,
    sequence: { sequencer: Sequencer },
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/budget-reporter.ts'],
    // A test that builds a system or an image takes 10-30 s on an idle machine and over a minute
    // when another job (or the second worker) takes the CPU: the limit catches hangs, not slowness.
    testTimeout: 300_000,
    // Hooks remove work trees of whole systems and stop VMs: on a loaded 2-core machine that takes
    // far longer than vitest's 10 s default, and a hook timing out fails a suite whose tests passed.
    hookTimeout: 300_000,
    teardownTimeout: 300_000,
  },
});
