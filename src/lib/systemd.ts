/**
 * `lib.systemd`: what modules that write systemd units share. The unit modules (`systemd.services`,
 * `.sockets`, `.timers`, `.targets`, `.paths`) take their common options and rendering from here;
 * service modules take the recurring shapes (a packaged unit changed by a drop-in and restarted
 * when its configuration file changes, a service with its own account and state folder).
 *
 * A unit is `environment.etc."systemd/system/<unit>".text`; its `wantedBy`/`requiredBy` are
 * symlink entries `systemd/system/<target>.wants/<unit>` (NixOS writes the same links instead of
 * `[Install]` sections, so nothing has to run `systemctl enable`).
 */
import { createHash } from 'node:crypto';
import { CairnError } from '../errors.js';
import type { ModuleArgs } from './modules.js';
import { mkOption, type Option } from './options.js';
import { types } from './types.js';
import { systemdIniText } from './formats.js';

export type UnitKind = 'service' | 'socket' | 'timer' | 'target' | 'path';

/** A value of a unit file entry; a list repeats the key, null leaves it out. */
export type UnitScalar = string | number | boolean;
export type UnitValue = UnitScalar | null | UnitScalar[];
export type SectionEntries = Record<string, UnitValue>;

/** The evaluated common options of every unit kind. */
export interface CommonUnit {
  enable: boolean;
  description: string;
  documentation: string[];
  wantedBy: string[];
  requiredBy: string[];
  after: string[];
  before: string[];
  requires: string[];
  wants: string[];
  bindsTo: string[];
  partOf: string[];
  conflicts: string[];
  onFailure: string[];
  unitConfig: SectionEntries;
  restartTriggers: unknown[];
  reloadTriggers: unknown[];
  overrideStrategy: 'asUnit' | 'asDropin';
}

/** Where packages' units are (Debian bookworm installs them under /lib; /lib is usr/lib on cairn systems). */
export const PACKAGE_UNIT_DIR = '/lib/systemd/system';

/**
 * A unit file value: one line (systemd ends lines at LF, CR and NUL), not ending in a backslash
 * (which would continue it on the next line).
 */
const UNIT_VALUE = '(?:[^\\x00-\\x1f\\x7f]*[^\\x00-\\x1f\\x7f\\\\])?';
/** A key of a unit file section (`ExecStart`, `X-Restart-Triggers`). */
const UNIT_KEY = '[A-Za-z][A-Za-z0-9_-]*';
/** A section name (`Service`, `DHCPv4`, `X-Extra`). */
const SECTION_NAME = '[A-Za-z][A-Za-z0-9_-]*';

/** The type of unit file values: scalars without line breaks, lists of them, or null. */
export function unitValueType() {
  const scalar = types.oneOf([types.bool, types.int, types.strMatching(UNIT_VALUE)]);
  return types.nullOr(types.either(scalar, types.listOf(scalar)));
}

/** The type of a section's entries, by key: keys and values as systemd reads them, one line each. */
export function unitSectionType() {
  return types.attrsNamed(types.strMatching(UNIT_KEY), unitValueType());
}

/** The type of a file's sections by name (`.netdev`, `.link` files). */
export function unitSectionsType() {
  return types.attrsNamed(types.strMatching(SECTION_NAME), unitSectionType());
}

/** The options every unit kind has (NixOS's `commonUnitOptions`). */
export function commonUnitOptions(kind: UnitKind): Record<string, Option> {
  const units = (what: string, key: string) => mkOption({ type: types.listOf(types.unitName), default: [], description: `${what} (\`${key}=\`).` });
  return {
    enable: mkOption({ type: types.bool, default: true, description: `Whether this ${kind} unit is generated. A disabled unit is masked: /etc/systemd/system/<name>.${kind} links to /dev/null, so neither this definition nor a unit of that name a package ships can start (NixOS: the same).` }),
    description: mkOption({ type: types.strMatching(UNIT_VALUE), default: '', description: 'The unit description (`Description=`), shown by systemctl and in the journal.' }),
    documentation: mkOption({ type: types.listOf(types.word), default: [], description: 'Documentation URIs (`Documentation=`).' }),
    wantedBy: mkOption({ type: types.listOf(types.unitName), default: [], example: ['multi-user.target'], description: 'Units that want this one: a `<unit>.wants/` link each, as `systemctl enable` would create.' }),
    requiredBy: mkOption({ type: types.listOf(types.unitName), default: [], description: 'Units that require this one: a `<unit>.requires/` link each.' }),
    after: units('Units this one starts after', 'After'),
    before: units('Units this one starts before', 'Before'),
    requires: units('Units this one needs; it fails if they fail', 'Requires'),
    wants: units('Units started along with this one', 'Wants'),
    bindsTo: units('Units whose stopping stops this one', 'BindsTo'),
    partOf: units('Units whose stop and restart propagate to this one', 'PartOf'),
    conflicts: units('Units stopped when this one starts', 'Conflicts'),
    onFailure: units('Units started when this one fails', 'OnFailure'),
    unitConfig: mkOption({ type: unitSectionType(), default: {}, example: { ConditionPathExists: '/etc/foo' }, description: 'More entries of the `[Unit]` section.' }),
    restartTriggers: mkOption({
      type: types.listOf(types.anything),
      default: [],
      description: 'Values whose change restarts the unit on switch: their digest is written as `X-Restart-Triggers=` in `[Unit]`, so the unit file changes with them.',
    }),
    reloadTriggers: mkOption({
      type: types.listOf(types.anything),
      default: [],
      description: 'Like `restartTriggers`, but a change only reloads the unit (`X-Reload-Triggers=`).',
    }),
    overrideStrategy: mkOption({
      type: types.enum(['asUnit', 'asDropin']),
      default: 'asUnit',
      description: '`asUnit` writes a whole unit file to /etc/systemd/system; `asDropin` writes `<unit>.d/overrides.conf` over the unit a package ships in /lib/systemd/system (use it to change or enable a packaged unit).',
    }),
  };
}

/** A short digest naming content that changes (scripts, triggers): 16 hex digits of SHA-256. */
export function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * Quotes a value for `Environment=` (systemd unquotes `"…"` with C escapes, and expands `%`
 * specifiers); control characters become `\xNN` escapes, so the entry stays on its line.
 */
export function environmentEntry(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new CairnError(`environment variable name ${JSON.stringify(name)} is not a valid name (letters, digits, _)`);
  const escaped = `${name}=${value}`
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/%/g, '%%')
    .replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `"${escaped}"`;
}

/**
 * Where a script of a service lives on the running system. Evaluation cannot write the store, so a
 * script is an executable file in /etc; its name carries the digest of its text, so the unit file
 * (which names it) changes exactly when the script does, and a switch restarts the service then,
 * as a new store path would in NixOS.
 */
export function scriptPath(name: string, phase: string, text: string): string {
  return `/etc/cairn/scripts/${name}-${phase}-${digest(text)}`;
}

/** The `[Unit]` section: dependencies, triggers, then `unitConfig` (which wins on a shared key). */
export function unitSection(def: CommonUnit): SectionEntries {
  const joined = (xs: string[]): string | null => (xs.length ? xs.join(' ') : null);
  const triggers = (xs: unknown[]): string | null => (xs.length ? digest(JSON.stringify(xs)) : null);
  return {
    Description: def.description || null,
    Documentation: joined(def.documentation),
    Requires: joined(def.requires),
    Wants: joined(def.wants),
    BindsTo: joined(def.bindsTo),
    PartOf: joined(def.partOf),
    Conflicts: joined(def.conflicts),
    After: joined(def.after),
    Before: joined(def.before),
    OnFailure: joined(def.onFailure),
    'X-Restart-Triggers': triggers(def.restartTriggers),
    'X-Reload-Triggers': triggers(def.reloadTriggers),
    ...def.unitConfig,
  };
}

/**
 * An INI-style file of systemd (units, drop-ins, networkd and journald files). Empty sections are
 * left out; `header` becomes the first comment; `extra` (NixOS's `extraConfig`) is appended as
 * written, so it continues the last section.
 */
export function renderSystemdIni(header: string, sections: [string, SectionEntries][], extra = ''): string {
  // lib.formats' systemd writer: one set of rules for what stays one entry (names, line breaks,
  // a final backslash), whichever module built the entries.
  const text = systemdIniText(header, sections, header);
  const tail = extra.replace(/\n+$/, '');
  return tail === '' ? text : `${text}${tail}\n`;
}

/** An `environment.etc` entry as the unit modules define them. */
export interface EtcEntry {
  text?: string;
  symlink?: string;
  mode?: string;
}

/**
 * The /etc entries of one unit: the unit file (or its drop-in) and the `.wants`/`.requires` links.
 * `unit` is the full unit name (`sshd.service`).
 */
export function unitEtcEntries(unit: string, def: CommonUnit, text: string): Record<string, EtcEntry> {
  const out: Record<string, EtcEntry> = {};
  let linkTarget: string;
  if (def.overrideStrategy === 'asDropin') {
    // A drop-in that changes nothing (only enabling a packaged unit) is left out.
    if (/^\[/m.test(text)) out[`systemd/system/${unit}.d/overrides.conf`] = { text };
    // An instance (`serial-getty@ttyS0.service`) is enabled by linking to its template's file.
    linkTarget = `${PACKAGE_UNIT_DIR}/${unit.replace(/@[^.]*\./, '@.')}`;
  } else {
    out[`systemd/system/${unit}`] = { text };
    linkTarget = `/etc/systemd/system/${unit}`;
  }
  for (const t of def.wantedBy) out[`systemd/system/${t}.wants/${unit}`] = { symlink: linkTarget };
  for (const t of def.requiredBy) out[`systemd/system/${t}.requires/${unit}`] = { symlink: linkTarget };
  return out;
}

/**
 * The /etc entries of every unit of a kind: an enabled one rendered by `render`, a disabled one
 * masked (a link to /dev/null, as NixOS makes it), so that a unit a package ships under that name
 * cannot start either.
 */
export function unitsEtc<T extends CommonUnit>(units: Record<string, T>, kind: UnitKind, render: (name: string, def: T) => Record<string, EtcEntry>): Record<string, EtcEntry> {
  const out: Record<string, EtcEntry> = {};
  for (const [name, def] of Object.entries(units)) {
    if (def.enable) Object.assign(out, render(name, def));
    else out[`systemd/system/${name}.${kind}`] = { symlink: '/dev/null' };
  }
  return out;
}

/** The header comment of a generated unit: where it comes from, and that editing it is pointless. */
export function unitHeader(kind: UnitKind, name: string): string {
  return `Generated by cairn from systemd.${kind}s.${name}; edits are replaced on the next switch.`;
}

/**
 * What a unit kind's module (`systemd.<kind>s`) declares and defines: `type`, the units by name with
 * the common options plus `extraOptions` (and the `section` option, e.g. `timerConfig`), and
 * `config`, their files in /etc. The module declares the option itself, so that the option is
 * located in the module's file.
 */
export function unitKind(
  args: ModuleArgs,
  kind: Exclude<UnitKind, 'service'>,
  section: { name: string; option: string; description: string } | null,
  extraOptions: (args: ModuleArgs) => Record<string, Option>,
  extraSection: (def: Record<string, unknown>) => SectionEntries,
) {
  const { config } = args;
  const unit = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      ...commonUnitOptions(kind),
      ...(section ? { [section.option]: mkOption({ type: unitSectionType(), default: {}, description: section.description }) } : {}),
      ...extraOptions({ ...args, name }),
    },
  }));
  return {
    type: types.attrsNamed(types.unitBaseName, unit),
    config: {
      environment: {
        get etc() {
          const units = config.systemd[`${kind}s`] as Record<string, CommonUnit & Record<string, unknown>>;
          return unitsEtc(units, kind, (name, def) => {
            const sections: [string, SectionEntries][] = [['Unit', unitSection(def)]];
            if (section) sections.push([section.name, { ...extraSection(def), ...(def[section.option] as SectionEntries) }]);
            return unitEtcEntries(`${name}.${kind}`, def, renderSystemdIni(unitHeader(kind, name), sections));
          });
        },
      },
    },
  };
}

/** What `configuredService` and `packagedService` take. */
export interface ConfiguredService {
  /** The configuration file below /etc (`nginx/nginx.conf`). */
  configFile: string;
  /** Its text, computed when first read (it usually reads config). */
  text: () => string;
  /** Whether a change of the file restarts the service (default) or reloads it. */
  onChange?: 'restart' | 'reload';
  /** Debian packages installed with it (those shipping a packaged unit). */
  packages?: string[];
  /** More definitions of `systemd.services.<name>` (`wantedBy`, `serviceConfig`, …). */
  unit?: Record<string, unknown>;
}

/**
 * The definitions of a service that reads one generated file in /etc: the file, and the unit
 * with the file's digest as its restart (or reload) trigger, so a switch restarts the service
 * exactly when the file changed (the file is a link into the store; the service would not notice).
 */
export function configuredService(name: string, o: ConfiguredService) {
  let text: string | undefined;
  const once = (): string => (text ??= o.text());
  const trigger = o.onChange === 'reload' ? 'reloadTriggers' : 'restartTriggers';
  return {
    environment: {
      ...(o.packages ? { systemPackages: o.packages } : {}),
      etc: { [o.configFile]: { get text() { return once(); } } },
    },
    systemd: {
      services: {
        [name]: {
          ...o.unit,
          get [trigger]() {
            return [digest(once())];
          },
        },
      },
    },
  };
}

/**
 * `configuredService` for a unit a package ships (`systemd-timesyncd`, `systemd-resolved`): a drop-in
 * over the packaged unit (`overrideStrategy = "asDropin"`) carries the trigger and `unit`'s entries.
 */
export function packagedService(name: string, o: ConfiguredService) {
  return configuredService(name, { ...o, unit: { overrideStrategy: 'asDropin', ...o.unit } });
}

/** What `serviceAccount` takes. */
export interface ServiceAccount {
  /** The account's group: a group of the account's own name by default, created with it. */
  group?: string;
  home?: string;
  description?: string;
}

/** A system account for a service (`users.users.<name>`, and its own group unless `group` names another). */
export function serviceAccount(name: string, o: ServiceAccount = {}) {
  const group = o.group ?? name;
  return {
    users: {
      users: { [name]: { isSystemUser: true, group, ...(o.home !== undefined ? { home: o.home } : {}), ...(o.description !== undefined ? { description: o.description } : {}) } },
      groups: group === name ? { [name]: {} } : {},
    },
  };
}

/** What `stateService` takes. */
export interface StateService {
  /** The account the service runs as (default: the service's name), created with its own group. */
  user?: string;
  description?: string;
  /** Its folder below /var/lib (default: the service's name), made by systemd (`StateDirectory=`), owned by the account, mode 0750. */
  stateDirectory?: string;
  /** More definitions of `systemd.services.<name>` (`wantedBy`, `serviceConfig.ExecStart`, …). */
  unit?: Record<string, unknown> & { serviceConfig?: SectionEntries };
}

/**
 * The definitions of a service that runs as an account of its own and keeps its data in
 * /var/lib/<stateDirectory> (its home): the account and group, and the unit's `User=`, `Group=`,
 * `StateDirectory=` (systemd creates the folder and hands it to the account on start).
 */
export function stateService(name: string, o: StateService = {}) {
  const user = o.user ?? name;
  const dir = o.stateDirectory ?? name;
  const account = serviceAccount(user, { home: `/var/lib/${dir}`, ...(o.description !== undefined ? { description: o.description } : {}) });
  return {
    users: account.users,
    systemd: {
      services: {
        [name]: {
          ...o.unit,
          serviceConfig: { User: user, Group: user, StateDirectory: dir, StateDirectoryMode: '0750', ...o.unit?.serviceConfig },
        },
      },
    },
  };
}
