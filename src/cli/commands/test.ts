import type { CommandModule } from 'yargs';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Store } from '../../store/index.js';
import { runTest, type TestResult } from '../../testing/index.js';
import { progressReporter } from '../progress.js';

interface TestArgs {
  file: string;
  'keep-vm-state'?: boolean;
  'boot-cache'?: string;
  interactive?: boolean;
  junit?: string;
  json?: boolean;
}

const xml = (s: string): string => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '');

/** A JUnit report of one VM test (CI systems read these). */
export function junitReport(r: TestResult): string {
  const failure = r.passed ? '' : `<failure message="${xml(r.error!.split('\n')[0]!)}">${xml(r.error!)}</failure>`;
  const out = Object.entries(r.consoles)
    .map(([n, c]) => `--- ${n} ---\n${c.slice(-20000)}`)
    .join('\n');
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="cairn" tests="1" failures="${r.passed ? 0 : 1}" time="${r.seconds.toFixed(1)}">` +
    `<testcase name="${xml(r.name)}" time="${r.seconds.toFixed(1)}">${failure}<system-out>${xml(out)}</system-out></testcase></testsuite></testsuites>\n`
  );
}

const testCommand: CommandModule<object, TestArgs> = {
  command: 'test <file>',
  describe: 'Run a VM test: boot its machines in QEMU and drive them with its testScript; exit 1 if it fails',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'Test file (*.test.ts: export default { nodes, testScript })' })
      .option('interactive', { type: 'boolean', describe: 'Build the machines, then give a REPL with them (and testScript()) instead of running the script' })
      .option('keep-vm-state', { type: 'boolean', describe: 'Keep the machines\' state disks and logs (the folder is printed)' })
      .option('boot-cache', { type: 'string', describe: 'Keep each machine\'s first boot in this folder and restore it in later runs of the same test, systems and QEMU (a restored machine is past multi-user.target at once)' })
      .option('junit', { type: 'string', describe: 'Write a JUnit XML report to this file' })
      .option('json', { type: 'boolean', describe: 'Print the result as JSON: { name, passed, seconds, error, subtests }' }),
  handler: async (args) => {
    const store = Store.open();
    const report = progressReporter();
    const r = await runTest(resolve(args.file), {
      store,
      keepVmState: args['keep-vm-state'],
      ...(args['boot-cache'] ? { bootCache: resolve(args['boot-cache']) } : {}),
      interactive: args.interactive,
      onProgress: report.progress,
      log: (m) => {
        report.done();
        process.stderr.write(`${m}\n`);
      },
    });
    report.done();
    if (args.junit) writeFileSync(args.junit, junitReport(r));
    if (r.workDir) process.stderr.write(`machines' disks and sockets kept in ${r.workDir}\n`);
    if (args.json) process.stdout.write(JSON.stringify({ name: r.name, passed: r.passed, seconds: Number(r.seconds.toFixed(1)), error: r.error ?? null, subtests: r.subtests.map((s) => ({ ...s, seconds: Number(s.seconds.toFixed(1)) })) }, null, 2) + '\n');
    else if (r.passed) process.stdout.write(`passed: ${r.name} (${r.seconds.toFixed(1)} s)\n`);
    else process.stderr.write(`failed: ${r.name} (${r.seconds.toFixed(1)} s)\n${r.error}\n`);
    process.exitCode = r.passed ? 0 : 1;
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const testCommands: CommandModule<any, any>[] = [testCommand];
