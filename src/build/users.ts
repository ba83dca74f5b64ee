/**
 * The users spec of a generation: the accounts activation must make, as two tab-separated
 * files read by `scripts/activate/users.awk` on the running system.
 *
 *   groups   name  gid|-  members(,)  kind
 *   users    name  uid|-  group  gecos  home  shell  kind  createHome(0|1)  hash|-  hashFile|-  initialHash|-
 *
 * kind is `base` (base-passwd's fixed accounts), `package` (a package's sysusers.d), `system` or
 * `normal`; `-` means "allocate, and keep what was allocated before". Password hashes from
 * `hashedPasswordFile` are read by activation and never enter the store.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../errors.js';
import { showOption } from '../lib/show.js';
import { registerBuilder, type Derivation, type Store } from '../store/index.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readDuties, type BuiltPackage } from './duties.js';
import { derivedSalt, sha512Crypt } from './crypt.js';
import type { GroupOption, UserOption } from '../eval/spec.js';

interface SpecUser {
  name: string;
  uid: string;
  group: string;
  gecos: string;
  home: string;
  shell: string;
  kind: string;
  createHome: boolean;
  hash: string;
  hashFile: string;
  /** The password a new account gets (and, with immutable users, one without any other). */
  initialHash: string;
}

interface SpecGroup {
  name: string;
  gid: string;
  members: Set<string>;
  kind: string;
}

/** The spec files' texts. */
export interface UsersSpec {
  users: string;
  groups: string;
}

/** A field of the spec: no tab, newline or colon can reach /etc/passwd through it. */
/**
 * A problem with one option's value, named by its path. The spec is computed in a builder, which
 * has no evaluation: the build adds where the option was defined (see system.ts).
 */
export class UsersOptionError extends CairnError {
  constructor(
    readonly option: string[],
    message: string,
  ) {
    super(`${showOption(option)}: ${message}`);
  }
}

function field(value: string, what: string[]): string {
  if (/[\t\n:]/.test(value)) throw new UsersOptionError(what, `'${value}' contains a tab, newline or colon, which /etc/passwd cannot hold`);
  return value === '' ? '' : value;
}

/** Reads base-passwd's master files (`name:x:id:gid:gecos:home:shell`, `name:x:gid:members`). */
function baseAccounts(store: Store, basePasswd: BuiltPackage | undefined): { users: SpecUser[]; groups: SpecGroup[] } {
  if (!basePasswd) return { users: [], groups: [] };
  const dir = join(store.toPhysical(basePasswd.storePath), 'usr', 'share', 'base-passwd');
  const lines = (f: string): string[][] => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l.includes(':')).map((l) => l.split(':')) : []);
  const groups = lines('group.master').map(([name, , gid, members]) => ({ name: name!, gid: gid!, members: new Set((members ?? '').split(',').filter(Boolean)), kind: 'base' }));
  const users = lines('passwd.master').map(([name, , uid, gid, gecos, home, shell]) => ({
    name: name!,
    uid: uid!,
    group: groups.find((g) => g.gid === gid)?.name ?? name!,
    gecos: gecos ?? '',
    home: home ?? '/',
    shell: shell ?? '/usr/sbin/nologin',
    kind: 'base',
    createHome: false,
    hash: '-',
    hashFile: '-',
    initialHash: '-',
  }));
  return { users, groups };
}

/**
 * Builds the spec from the declared users and groups on top of base-passwd's accounts and those
 * the packages' sysusers.d files declare (so systemd-sysusers finds them made at boot, and
 * `mutableUsers = false` does not remove them).
 */
export function usersSpec(
  store: Store,
  pkgs: BuiltPackage[],
  cfg: { users: Record<string, UserOption>; groups: Record<string, GroupOption> },
): UsersSpec {
  const base = baseAccounts(store, pkgs.find((p) => p.name === 'base-passwd'));
  const groups = new Map<string, SpecGroup>(base.groups.map((g) => [g.name, g]));
  const users = new Map<string, SpecUser>(base.users.map((u) => [u.name, u]));

  for (const p of pkgs) {
    const d = readDuties(store, p.storePath);
    if (!d) continue;
    for (const g of d.groups) {
      if (!g.source.startsWith('sysusers.d/') || groups.has(g.name)) continue;
      groups.set(g.name, { name: g.name, gid: g.gid && /^\d+$/.test(g.gid) ? g.gid : '-', members: new Set(), kind: 'package' });
    }
    for (const u of d.users) {
      if (!u.source.startsWith('sysusers.d/') || users.has(u.name)) continue;
      // sysusers' `u NAME ID` makes a group of the same name unless ID names one (`uid:gid`).
      const [uid, gid] = (u.uid ?? '-').split(':');
      const groupName = u.group ?? u.name;
      if (!groups.has(groupName)) groups.set(groupName, { name: groupName, gid: gid && /^\d+$/.test(gid) ? gid : uid && /^\d+$/.test(uid) ? uid : '-', members: new Set(), kind: 'package' });
      users.set(u.name, {
        name: u.name, uid: uid && /^\d+$/.test(uid) ? uid : '-', group: groupName, gecos: u.gecos ?? '', home: u.home ?? '/',
        shell: u.shell ?? '/usr/sbin/nologin', kind: 'package', createHome: false, hash: '-', hashFile: '-', initialHash: '-',
      });
    }
    for (const m of d.memberships) if (m.source.startsWith('sysusers.d/')) groups.get(m.group)?.members.add(m.user);
  }

  for (const name of Object.keys(cfg.groups).sort()) {
    const g = cfg.groups[name]!;
    const prev = groups.get(g.name);
    const gid = g.gid !== null ? String(g.gid) : (prev?.gid ?? '-');
    groups.set(g.name, { name: g.name, gid, members: new Set([...(prev?.members ?? []), ...g.members]), kind: prev?.kind ?? 'system' });
  }
  for (const key of Object.keys(cfg.users).sort()) {
    const u = cfg.users[key]!;
    const where = (option: string): string[] => ['users', 'users', key, option];
    const prev = users.get(u.name);
    const normal = u.isNormalUser;
    const group = u.group || (normal ? 'users' : prev?.group ?? 'nogroup');
    if (!groups.has(group)) throw new UsersOptionError(where('group'), `the group '${group}' is not declared; add users.groups.${group} = {}`);
    for (const g of u.extraGroups) {
      if (!groups.has(g)) throw new UsersOptionError(where('extraGroups'), `the group '${g}' is not declared; add users.groups.${g} = {}`);
      groups.get(g)!.members.add(u.name);
    }
    users.set(u.name, {
      name: u.name,
      uid: u.uid !== null ? String(u.uid) : (prev?.uid ?? '-'),
      group,
      gecos: field(u.description || (prev?.gecos ?? ''), where('description')),
      home: field(u.home, where('home')),
      shell: field(u.shell, where('shell')),
      kind: prev?.kind === 'base' ? 'base' : normal ? 'normal' : 'system',
      createHome: u.createHome,
      hash: u.hashedPassword !== null ? field(u.hashedPassword, where('hashedPassword')) : '-',
      hashFile: u.hashedPasswordFile !== null ? field(u.hashedPasswordFile, where('hashedPasswordFile')) : '-',
      initialHash: u.initialHashedPassword ? field(u.initialHashedPassword, where('initialHashedPassword')) : '-',
    });
  }
  // Keyed by attribute name: a group's `name` may differ from it.
  const groupKey = new Map(Object.keys(cfg.groups).map((k) => [cfg.groups[k]!.name, k]));
  for (const g of groups.values()) {
    for (const m of g.members) if (!users.has(m)) throw new UsersOptionError(['users', 'groups', groupKey.get(g.name) ?? g.name, 'members'], `no user '${m}' is declared`);
  }

  const groupLines = [...groups.values()].map((g) => [g.name, g.gid, [...g.members].sort().join(','), g.kind].join('\t'));
  const userLines = [...users.values()].map((u) =>
    [u.name, u.uid, u.group, u.gecos, u.home, u.shell, u.kind, u.createHome ? '1' : '0', u.hash, u.hashFile, u.initialHash].join('\t'),
  );
  return { users: userLines.map((l) => `${l}\n`).join(''), groups: groupLines.map((l) => `${l}\n`).join('') };
}

/** The users option values the spec reads. */
export type UsersConfig = Parameters<typeof usersSpec>[2];

/**
 * The spec as a derivation (`users`, `groups`, and the awk program that applies them): computed
 * when built, so an unchanged configuration reads no package metadata on a rebuild.
 */
export function usersSpecDerivation(pkgs: BuiltPackage[], cfg: UsersConfig, awk: string): Derivation {
  const pick = <T extends object>(o: Record<string, T>, keys: string[]): Record<string, Partial<T>> =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Object.fromEntries(keys.map((key) => [key, (v as Record<string, unknown>)[key]])) as Partial<T>]));
  // Plain-text passwords are hashed here: only their hashes enter the derivation (and the store).
  const hashed = Object.fromEntries(
    Object.entries(cfg.users).map(([k, u]) => {
      const hash = (plain: string | null | undefined): string | null => (plain === null || plain === undefined ? null : sha512Crypt(plain, derivedSalt(u.name, plain)));
      return [k, { ...u, hashedPassword: u.hashedPassword ?? hash(u.password), initialHashedPassword: u.initialHashedPassword ?? hash(u.initialPassword) }];
    }),
  );
  const users = pick(hashed, ['name', 'uid', 'isNormalUser', 'isSystemUser', 'description', 'group', 'extraGroups', 'home', 'createHome', 'shell', 'hashedPassword', 'hashedPasswordFile', 'initialHashedPassword']);
  const groups = pick(cfg.groups, ['name', 'gid', 'members']);
  const sorted = [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { name: 'system-users', builder: 'cairn:users', args: { packages: sorted, users, groups, awk }, inputs: sorted.map((p) => p.storePath) };
}

registerBuilder('cairn:users', async (ctx) => {
  const { packages, users, groups, awk } = ctx.drv.args as { packages: BuiltPackage[]; users: UsersConfig['users']; groups: UsersConfig['groups']; awk: string };
  const spec = usersSpec(ctx.store, packages, { users, groups });
  mkdirSync(ctx.out);
  writeFileSync(join(ctx.out, 'users'), spec.users);
  writeFileSync(join(ctx.out, 'groups'), spec.groups);
  writeFileSync(join(ctx.out, 'users.awk'), awk);
});
