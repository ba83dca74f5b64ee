import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { CairnError } from '../../errors.js';
import { detectHardware, invokingUser, renderConfig, renderHardware, writeInitFiles, type Firmware } from '../../init/index.js';

interface InitArgs {
  root?: string;
  dir: string;
  force?: boolean;
  showHardwareConfig?: boolean;
  filesystems: boolean;
  firmware?: Firmware;
}

/** Where the configuration goes, as /etc/nixos is NixOS's: beside the /etc the system generates. */
export const DEFAULT_CONFIG_DIR = '/etc/cairn';

const initCommand: CommandModule<object, InitArgs> = {
  command: 'init',
  describe: "Write a starting cairn.yaml and the hardware.yaml it imports from this machine's (or a mounted disk's) hardware",
  builder: (y) =>
    y
      .option('root', { type: 'string', describe: 'The target root: a machine\'s disk mounted there (only mounts under it count)' })
      .option('dir', { type: 'string', default: DEFAULT_CONFIG_DIR, describe: 'Where the files go: an absolute path is inside --root, a relative one is from here' })
      .option('force', { type: 'boolean', describe: 'Write hardware.yaml again (an existing cairn.yaml is always kept)' })
      .option('show-hardware-config', { type: 'boolean', describe: 'Print hardware.yaml and write nothing' })
      .option('filesystems', { type: 'boolean', default: true, describe: 'Detect file systems and swap (--no-filesystems leaves them out of hardware.yaml)' })
      .option('firmware', { choices: ['uefi', 'bios'] as const, describe: 'The firmware the machine boots with (default: that of this machine: /sys/firmware/efi)' }),
  handler: (args) => {
    const root = args.root === undefined ? '/' : resolve(args.root);
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new CairnError(`--root ${root}: not a folder`);
    const noFileSystems = !args.filesystems;
    const hw = detectHardware({ root, firmware: args.firmware, noFileSystems });
    if (!noFileSystems && root !== '/' && !hw.fileSystems.some((f) => f.mountPoint === '/')) {
      throw new CairnError(`--root ${root}: nothing is mounted there; mount the machine's root file system there first (or use --no-filesystems)`);
    }
    for (const w of hw.warnings) process.stderr.write(`warning: ${w}\n`);
    const hardware = renderHardware(hw, { noFileSystems });
    if (args.showHardwareConfig) {
      process.stdout.write(hardware);
      return;
    }
    const dir = isAbsolute(args.dir) ? join(root, args.dir) : resolve(args.dir);
    // As the machine will see the folder, for the command the header suggests.
    const shown = isAbsolute(args.dir) ? args.dir.replace(/\/+$/, '') || '/' : dir;
    const user = invokingUser(process.env);
    const result = writeInitFiles(dir, hardware, renderConfig(hw, user, shown), args.force === true);
    for (const f of result.written) process.stderr.write(`writing ${f}\n`);
    for (const f of result.kept) process.stderr.write(`keeping ${f} (cairn init never overwrites it)\n`);
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const initCommands: CommandModule<any, any>[] = [initCommand];
