/**
 * Prints the suite's time budget after vitest's own summary: the run's wall time, the VM tests'
 * part (test/vm/**) as its own line, and every file and test slower than SLOW_MS with its time,
 * slowest first, so a case that got slow is seen without reading the whole log.
 */
import type { Reporter, TestModule, TestSpecification } from 'vitest/node';

const SLOW_MS = 30_000;
const VM = /^test\/vm\//;

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const minutes = (ms: number): string => (ms >= 60_000 ? ` (${(ms / 60_000).toFixed(1)} min)` : '');

export default class BudgetReporter implements Reporter {
  private started = Date.now();

  onTestRunStart(_specifications: ReadonlyArray<TestSpecification>): void {
    this.started = Date.now();
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const wall = Date.now() - this.started;
    const files = testModules.map((m) => ({ name: m.relativeModuleId, ms: m.diagnostic().duration, module: m }));
    const tests = testModules.flatMap((m) =>
      [...m.children.allTests()].flatMap((t) => {
        const d = t.diagnostic();
        return d ? [{ name: `${m.relativeModuleId} > ${t.fullName}`, file: m.relativeModuleId, ms: d.duration, start: d.startTime }] : [];
      }),
    );
    const vmFiles = files.filter((f) => VM.test(f.name));
    const vmTests = tests.filter((t) => VM.test(t.file));
    // Files run side by side and a file's cases too: the VM part's wall time is the span from its
    // first test's start to its last test's end; the sum is what it would cost run one by one.
    const span = vmTests.length > 0 ? Math.max(...vmTests.map((t) => t.start + t.ms)) - Math.min(...vmTests.map((t) => t.start)) : 0;
    const lines = [
      '',
      'Time budget',
      `  whole run: ${secs(wall)}${minutes(wall)} wall, ${files.length} files, ${secs(files.reduce((s, f) => s + f.ms, 0))} of file time`,
      `  VM tests (test/vm/**): ${secs(span)}${minutes(span)} wall, ${vmFiles.length} files, ${secs(vmFiles.reduce((s, f) => s + f.ms, 0))} of file time`,
    ];
    const slowFiles = files.filter((f) => f.ms >= SLOW_MS).sort((a, b) => b.ms - a.ms);
    const slowTests = tests.filter((t) => t.ms >= SLOW_MS).sort((a, b) => b.ms - a.ms);
    if (slowFiles.length > 0) lines.push(`  files over ${secs(SLOW_MS)}:`, ...slowFiles.map((f) => `    ${secs(f.ms).padStart(9)}  ${f.name}`));
    if (slowTests.length > 0) lines.push(`  tests over ${secs(SLOW_MS)}:`, ...slowTests.map((t) => `    ${secs(t.ms).padStart(9)}  ${t.name}`));
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
