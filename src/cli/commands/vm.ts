import type { CommandModule } from 'yargs';
import { basename, extname, resolve } from 'node:path';
import { execa } from 'execa';
import { Store } from '../../store/index.js';
import { evalVmConfig, prepareVm, parseForward, QEMU } from '../../vm/index.js';
import { progressReporter } from '../progress.js';
import { shellWord } from '../../shell.js';
import { UsageError } from '../../errors.js';

interface VmArgs {
  config: string;
  mem?: number;
  cpus?: number;
  forward?: string[];
  state?: string;
  'guest-agent'?: string;
  'dry-run'?: boolean;
}

const vmCommand: CommandModule<object, VmArgs> = {
  command: 'vm <config>',
  describe: 'Build the system and boot it in QEMU: serial console on the terminal (Ctrl-a x quits), state kept in a disk file',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'Configuration file' })
      .option('mem', { type: 'number', describe: 'Memory in MiB (default: virtualisation.memorySize)' })
      .option('cpus', { type: 'number', describe: 'Virtual CPUs (default: virtualisation.cores)' })
      .option('forward', { type: 'string', array: true, describe: 'Forward a host port into the guest: HOST:GUEST (tcp) or udp:HOST:GUEST; repeatable' })
      .option('state', { type: 'string', describe: 'State disk (the root file system; made on first start). Default: <config name>-vm.qcow2' })
      .option('guest-agent', {
        type: 'string',
        describe: 'Unix socket of the QEMU guest agent, when the configuration enables services.qemuGuest. Default: the state disk\'s name with .qga',
      })
      .option('dry-run', { type: 'boolean', describe: 'Build and prepare everything, print the QEMU command line, do not start it' }),
  handler: async (args) => {
    // yargs reads `--mem abc` as NaN: refused here, before anything is built.
    for (const name of ['mem', 'cpus'] as const) {
      const v = args[name];
      if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) throw new UsageError(`--${name} must be a positive whole number${Number.isNaN(v) ? '' : `, not ${v}`}`);
    }
    const forwards = (args.forward ?? []).map(parseForward);
    const store = Store.open();
    const report = progressReporter();
    const state = args.state ?? `${basename(args.config, extname(args.config))}-vm.qcow2`;
    const vm = await prepareVm(await evalVmConfig(args.config), {
      store,
      state,
      guestAgentSocket: resolve(args['guest-agent'] ?? `${state.replace(/\.qcow2$/, '')}.qga`),
      memoryMiB: args.mem,
      cpus: args.cpus,
      forwards,
      console: 'stdio',
      onProgress: report.progress,
    });
    report.done();
    for (const w of vm.warnings) report.warn(w);
    process.stderr.write(`cairn vm: ${vm.toplevel}\n`);
    process.stderr.write(`cairn vm: accelerator ${vm.accel.accel} (${vm.accel.reason})\n`);
    process.stderr.write(`cairn vm: state disk ${vm.state.path}${vm.state.created ? ' (new)' : ''}\n`);
    if (vm.options.guestAgentSocket) process.stderr.write(`cairn vm: guest agent at ${vm.options.guestAgentSocket}\n`);
    for (const f of vm.options.network?.forwards ?? []) process.stderr.write(`cairn vm: ${f.proto} 127.0.0.1:${f.hostPort} -> guest port ${f.guestPort}\n`);
    if (args['dry-run']) {
      process.stdout.write([QEMU, ...vm.args].map(shellWord).join(' ') + '\n');
      return;
    }
    process.stderr.write('cairn vm: serial console follows; Ctrl-a x quits\n');
    const r = await execa(QEMU, vm.args, { stdio: 'inherit', reject: false });
    process.exitCode = r.exitCode ?? 1;
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const vmCommands: CommandModule<any, any>[] = [vmCommand];
