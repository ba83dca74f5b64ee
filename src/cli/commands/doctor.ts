import type { CommandModule } from 'yargs';
import { checkHostTools, installCommand } from '../../host/tools.js';

const doctorCommand: CommandModule<object, { json?: boolean }> = {
  command: 'doctor',
  describe: 'Check the host tools cairn drives and print the command that installs what is missing',
  builder: (y) => y.option('json', { type: 'boolean', describe: 'Print JSON' }),
  handler: (args) => {
    const reports = checkHostTools();
    const install = installCommand(reports);
    if (args.json) {
      const tools = reports.map((r) => ({ name: r.tool.name, package: r.tool.package, purpose: r.tool.purpose, present: r.present }));
      process.stdout.write(`${JSON.stringify({ ok: !install, tools, install: install ?? null }, null, 2)}\n`);
    } else {
      for (const r of reports) process.stdout.write(`${r.present ? 'ok     ' : 'MISSING'}  ${r.tool.name.padEnd(48)} ${r.tool.purpose} (${r.tool.package})\n`);
      process.stdout.write(install ? `\nInstall what is missing:\n  ${install}\n` : '\nEverything cairn needs is installed.\n');
    }
    process.exitCode = install ? 1 : 0;
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const doctorCommands: CommandModule<any, any>[] = [doctorCommand];
