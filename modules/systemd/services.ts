import type { ModuleArgs } from '../../src/lib/index.js';
import { Package } from '../../src/lib/index.js';
import {
  commonUnitOptions,
  digest,
  environmentEntry,
  renderSystemdIni,
  unitEtcEntries,
  unitHeader,
  unitSection,
  unitsEtc,
  unitSectionType,
  type CommonUnit,
  type EtcEntry,
  type SectionEntries,
} from './unit.js';

/** The evaluated options of one service. */
interface Service extends CommonUnit {
  environment: Record<string, string | null>;
  path: (Package | string)[];
  serviceConfig: SectionEntries;
  script: string;
  preStart: string;
  postStart: string;
  reload: string;
  postStop: string;
  startAt: string | string[];
  restartIfChanged: boolean;
  reloadIfChanged: boolean;
  stopIfChanged: boolean;
}

/** The shell snippets of a service that become programs, with the `[Service]` key each one sets. */
const PHASES = [
  ['preStart', 'ExecStartPre', 'pre-start'],
  ['script', 'ExecStart', 'start'],
  ['postStart', 'ExecStartPost', 'post-start'],
  ['reload', 'ExecReload', 'reload'],
  ['postStop', 'ExecStopPost', 'post-stop'],
] as const;

/** Debian's default PATH for services, searched before `path` entries. */
const DEFAULT_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/**
 * Where a script of a service lives on the running system. Evaluation cannot write the store, so a
 * script is an executable file in /etc; its name carries the digest of its text, so the unit file
 * (which names it) changes exactly when the script does, and a switch restarts the service then,
 * as a new store path would in NixOS.
 */
export function scriptPath(name: string, phase: string, text: string): string {
  return `/etc/cairn/scripts/${name}-${phase}-${digest(text)}`;
}

/**
 * `systemd.services.<name>`: service units with NixOS's shape. `script` and the other snippets
 * become bash scripts in /etc/cairn/scripts (see `scriptPath`); `startAt` adds a timer.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const snippet = (what: string, key: string) =>
    mkOption({ type: types.lines, default: '', description: `Shell commands (bash, \`set -e\`) run ${what}; they become a script in /etc/cairn/scripts named by \`${key}=\`.` });
  const line = types.singleLineStr;
  const service = types.submodule({
    options: {
      ...commonUnitOptions(lib, 'service'),
      environment: mkOption({
        type: types.attrsNamed(types.envName, types.nullOr(line)),
        default: {},
        example: { LANG: 'C.UTF-8' },
        description: 'Environment variables of the service (`Environment=`); null leaves one out.',
      }),
      path: mkOption({
        type: types.listOf(types.either(types.package, types.path)),
        default: [],
        example: ['rsync', '/opt/tool'],
        description: 'What the service finds on `PATH`: packages are installed system-wide (their programs are in /usr/bin); a folder adds its `bin` and `sbin`.',
      }),
      serviceConfig: mkOption({
        type: unitSectionType(lib),
        default: {},
        example: { Type: 'simple', Restart: 'always', DynamicUser: true },
        description: 'Entries of the `[Service]` section; a list repeats the key (`ExecStart: ["", "/bin/x"]` resets, then sets).',
      }),
      script: snippet('as the service (its main process)', 'ExecStart'),
      preStart: snippet('before the service starts', 'ExecStartPre'),
      postStart: snippet('after the service has started', 'ExecStartPost'),
      reload: snippet('to reload the service', 'ExecReload'),
      postStop: snippet('after the service has stopped', 'ExecStopPost'),
      startAt: mkOption({
        type: types.either(line, types.listOf(line)),
        default: [],
        example: '*-*-* 03:00:00',
        description: 'When to start the service (`OnCalendar=` expressions, see systemd.time(7)): adds a timer unit of the same name, wanted by timers.target.',
      }),
      restartIfChanged: mkOption({ type: types.bool, default: true, description: 'Whether a switch restarts the service when its unit changed (`X-RestartIfChanged=false` when not).' }),
      reloadIfChanged: mkOption({ type: types.bool, default: false, description: 'Whether a switch reloads instead of restarting the service when its unit changed (`X-ReloadIfChanged=true`).' }),
      stopIfChanged: mkOption({
        type: types.bool,
        default: true,
        description: 'Whether a switch stops the old service before activation and starts the new one after (true), or restarts it after activation (`X-StopIfChanged=false`).',
      }),
    },
  });

  /** The `[Service]` section of a service, with its scripts' files beside it in `files`. */
  const serviceSection = (name: string, def: Service, files: Record<string, EtcEntry>): SectionEntries => {
    const dirs = def.path.filter((p): p is string => typeof p === 'string');
    const env: Record<string, string> = {};
    if (dirs.length) env.PATH = [...DEFAULT_PATH, ...dirs.flatMap((d) => [`${d}/bin`, `${d}/sbin`])].join(':');
    for (const [k, v] of Object.entries(def.environment)) if (v !== null) env[k] = v;
    const exec: SectionEntries = {};
    for (const [phase, key, label] of PHASES) {
      const text = def[phase];
      if (!text.trim()) continue;
      const header = lib.shellComment(`${name}.service: ${phase}, generated by cairn from systemd.services.${name}.${phase}.`);
      const body = lib.renderTemplate('systemd/script', { header, text: text.replace(/\n+$/, '') });
      const path = scriptPath(name, label, body);
      files[path.slice('/etc/'.length)] = { text: body, mode: '0755' };
      exec[key] = path;
    }
    return {
      Environment: Object.entries(env).map(([k, v]) => environmentEntry(k, v)),
      'X-RestartIfChanged': def.restartIfChanged ? null : false,
      'X-ReloadIfChanged': def.reloadIfChanged ? true : null,
      'X-StopIfChanged': def.stopIfChanged ? null : false,
      ...exec,
      ...def.serviceConfig,
    };
  };

  const services = () => config.systemd.services as Record<string, Service>;
  return {
    options: {
      systemd: {
        services: mkOption({ type: types.attrsNamed(types.unitBaseName, service), default: {}, description: 'systemd services, by unit name without `.service`.' }),
      },
    },
    config: {
      environment: {
        get etc() {
          return unitsEtc(services(), (name, def) => {
            const files: Record<string, EtcEntry> = {};
            const text = renderSystemdIni(lib, unitHeader('service', name), [
              ['Unit', unitSection(def)],
              ['Service', serviceSection(name, def, files)],
            ]);
            return { ...files, ...unitEtcEntries(`${name}.service`, def, text) };
          });
        },
        get systemPackages() {
          // Packages in a service's `path` must be installed for the service to find them.
          return Object.values(services())
            .filter((s) => s.enable)
            .flatMap((s) => s.path.filter((p): p is Package => p instanceof Package));
        },
      },
      systemd: {
        get timers() {
          const timers: Record<string, unknown> = {};
          for (const [name, s] of Object.entries(services())) {
            const when = typeof s.startAt === 'string' ? [s.startAt] : s.startAt;
            if (!s.enable || when.length === 0) continue;
            timers[name] = { wantedBy: ['timers.target'], timerConfig: { OnCalendar: when } };
          }
          return timers;
        },
      },
      get assertions() {
        return Object.entries(services())
          .filter(([, s]) => s.enable && s.overrideStrategy === 'asUnit')
          .map(([name, s]) => ({
            assertion: s.script.trim() !== '' || (s.serviceConfig.ExecStart ?? null) !== null,
            message: `systemd.services.${name} has neither \`script' nor \`serviceConfig.ExecStart': systemd would refuse to start it.`,
          }));
      },
    },
  };
};
