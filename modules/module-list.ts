import { resolve } from 'node:path';
import { modulesPath, SourcedModule } from '../src/lib/index.js';
import assertions from './misc/assertions.js';
import systemPackages from './environment/system-packages.js';
import etc from './environment/etc.js';
import hostname from './networking/hostname.js';
import packages from './packages/repositories.js';
import services from './systemd/services.js';
import sockets from './systemd/sockets.js';
import timers from './systemd/timers.js';
import targets from './systemd/targets.js';
import systemdPaths from './systemd/paths.js';
import tmpfiles from './systemd/tmpfiles.js';
import systemdNetwork from './systemd/network.js';
import systemdManager from './systemd/manager.js';
import interfaces from './networking/interfaces.js';
import hosts from './networking/hosts.js';
import firewall from './networking/firewall.js';
import resolved from './services/resolved.js';
import timesyncd from './services/timesyncd.js';
import journald from './services/journald.js';
import openssh from './services/openssh.js';
import nginx from './services/nginx.js';
import getty from './services/getty.js';
import sudo from './security/sudo.js';
import cairn from './programs/cairn.js';
import timezone from './time/timezone.js';
import locale from './i18n/locale.js';
import variables from './config/variables.js';
import shellAliases from './config/shell-aliases.js';
import users from './users/users.js';
import version from './system/version.js';
import activation from './system/activation.js';
import checks from './system/checks.js';
import bootKernel from './boot/kernel.js';
import bootInitrd from './boot/initrd.js';
import bootLoader from './boot/loader.js';
import fileSystems from './tasks/filesystems.js';
import imageSize from './image/size.js';
import qemuVm from './virtualisation/qemu-vm.js';
import testInstrumentation from './testing/test-instrumentation.js';
import topLevel from './system/top-level.js';

/** cairn's built-in modules with their source files (keys for `disabledModules`, locations for messages). */
const list: [string, unknown][] = [
  ['misc/assertions.ts', assertions],
  ['system/version.ts', version],
  ['system/activation.ts', activation],
  ['system/checks.ts', checks],
  ['system/top-level.ts', topLevel],
  ['networking/hostname.ts', hostname],
  ['environment/system-packages.ts', systemPackages],
  ['packages/repositories.ts', packages],
  ['environment/etc.ts', etc],
  ['users/users.ts', users],
  ['systemd/services.ts', services],
  ['systemd/sockets.ts', sockets],
  ['systemd/timers.ts', timers],
  ['systemd/targets.ts', targets],
  ['systemd/paths.ts', systemdPaths],
  ['systemd/tmpfiles.ts', tmpfiles],
  ['systemd/network.ts', systemdNetwork],
  ['systemd/manager.ts', systemdManager],
  ['networking/interfaces.ts', interfaces],
  ['networking/hosts.ts', hosts],
  ['networking/firewall.ts', firewall],
  ['services/resolved.ts', resolved],
  ['services/timesyncd.ts', timesyncd],
  ['services/journald.ts', journald],
  ['services/openssh.ts', openssh],
  ['services/nginx.ts', nginx],
  ['services/getty.ts', getty],
  ['security/sudo.ts', sudo],
  ['programs/cairn.ts', cairn],
  ['time/timezone.ts', timezone],
  ['i18n/locale.ts', locale],
  ['config/variables.ts', variables],
  ['config/shell-aliases.ts', shellAliases],
  ['boot/kernel.ts', bootKernel],
  ['boot/initrd.ts', bootInitrd],
  ['boot/loader.ts', bootLoader],
  ['tasks/filesystems.ts', fileSystems],
  ['image/size.ts', imageSize],
  ['virtualisation/qemu-vm.ts', qemuVm],
  ['testing/test-instrumentation.ts', testInstrumentation],
];

export const builtinModules: SourcedModule[] = list.map(([rel, mod]) => {
  const file = resolve(modulesPath, rel);
  return new SourcedModule(mod, { file }, file);
});
