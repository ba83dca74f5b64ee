/**
 * What a package's maintainer scripts would do, read (never run) from their text and from the
 * files the package ships. cairn never runs these scripts; it records their duties so modules
 * can provide the same result declaratively (alternatives, system users, diversions, triggers).
 */

export interface AlternativeDuty {
  link: string;
  name: string;
  path: string;
  priority: number;
  slaves: { link: string; name: string; path: string }[];
  /** `debhelper` when inside an "Automatically added by dh_…" block, else `script`. */
  source: 'debhelper' | 'script';
}

export interface UserDuty {
  name: string;
  system: boolean;
  group?: string;
  home?: string;
  shell?: string;
  uid?: string;
  gecos?: string;
  /** Where the duty was read: `postinst: adduser`, `sysusers.d/systemd-network.conf`, … */
  source: string;
}

export interface GroupDuty {
  name: string;
  system: boolean;
  gid?: string;
  source: string;
}

export interface DiversionDuty {
  path: string;
  divertTo?: string;
  package?: string;
  rename: boolean;
  source: string;
}

export interface Duties {
  alternatives: AlternativeDuty[];
  users: UserDuty[];
  groups: GroupDuty[];
  /** `adduser USER GROUP` style memberships. */
  memberships: { user: string; group: string; source: string }[];
  diversions: DiversionDuty[];
  /** DEBIAN/triggers lines, e.g. `activate-noawait ldconfig`. */
  triggers: string[];
  /** Other commands worth a declarative replacement (ldconfig, pam-auth-update, systemctl, …), with script. */
  other: { script: string; command: string }[];
}

/** Commands whose effect a cairn module may need to reproduce. */
const NOTABLE = new Set([
  'ldconfig', 'pam-auth-update', 'update-ca-certificates', 'locale-gen', 'update-locale', 'depmod', 'update-initramfs',
  'deb-systemd-helper', 'deb-systemd-invoke', 'systemctl', 'systemd-sysusers', 'systemd-tmpfiles', 'update-rc.d', 'invoke-rc.d',
  'dpkg-statoverride', 'ucf', 'ucfr', 'chown', 'chmod', 'chgrp', 'install', 'mkdir', 'ln', 'ssh-keygen', 'dpkg-trigger',
  'update-mime-database', 'glib-compile-schemas', 'gtk-update-icon-cache', 'fc-cache', 'update-desktop-database',
  'py3compile', 'pycompile', 'update-python-modules', 'mandb', 'install-info', 'update-grub', 'setcap',
]);

/** Splits shell text into simple commands (continuations joined; `;`, `&&`, `||`, `|` separate). */
export function shellCommands(script: string): { words: string[]; debhelper: boolean }[] {
  const out: { words: string[]; debhelper: boolean }[] = [];
  let debhelper = false;
  const lines = script.replace(/\\\n/g, ' ').split('\n');
  for (const rawLine of lines) {
    const line = rawLine.trim();
    if (/^# Automatically added by dh_/.test(line)) { debhelper = true; continue; }
    if (/^# End automatically added section/.test(line)) { debhelper = false; continue; }
    if (line === '' || line.startsWith('#')) continue;
    let words: string[] = [];
    let cur = '';
    let has = false;
    let quote: string | undefined;
    const flush = (): void => { if (has) words.push(cur); cur = ''; has = false; };
    const end = (): void => { flush(); if (words.length) out.push({ words, debhelper }); words = []; };
    for (let i = 0; i < line.length; i++) {
      const ch = line[i]!;
      if (quote) {
        if (ch === quote) quote = undefined;
        else if (ch === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
        else cur += ch;
        continue;
      }
      if (ch === '"' || ch === "'") { quote = ch; has = true; continue; }
      if (ch === '#' && !has) break; // comment
      if (ch === ' ' || ch === '\t') { flush(); continue; }
      // `>&`/`<&` are redirections (2>&1), not command separators.
      if (ch === '&' && (cur.endsWith('>') || cur.endsWith('<'))) { cur += ch; continue; }
      if (ch === ';' || ch === '|' || ch === '&' || ch === '(' || ch === ')' || ch === '`') {
        end();
        continue;
      }
      cur += ch;
      has = true;
    }
    end();
  }
  // Drop shell keywords and wrappers so `if ! getent …; then adduser …` yields `adduser …`.
  return out.map((c) => {
    let w = c.words;
    while (w.length > 0 && /^(if|then|else|elif|fi|do|done|while|until|esac|!|exec|command|env|sudo|\{|\})$/.test(w[0]!)) w = w.slice(1);
    while (w.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[0]!)) w = w.slice(1);
    // Redirections (`>/dev/null`, `2>&1`, `> file`) are not arguments.
    const args: string[] = [];
    for (let i = 0; i < w.length; i++) {
      if (/^\d*[<>]/.test(w[i]!)) { if (/^\d*[<>]+$/.test(w[i]!)) i++; continue; }
      args.push(w[i]!);
    }
    return { words: args, debhelper: c.debhelper };
  }).filter((c) => c.words.length > 0);
}

function base(cmd: string): string {
  return cmd.slice(cmd.lastIndexOf('/') + 1);
}

/** Options of adduser/addgroup/useradd that take a value (so the value is not taken for a name). */
const VALUE_OPTS = new Set(['--home', '--shell', '--ingroup', '--gid', '--uid', '--gecos', '--comment', '--firstuid', '--lastuid', '--firstgid', '--lastgid', '--conf', '--add-extra-groups', '--key',
  '-d', '-s', '-g', '-G', '-u', '-c', '-K', '-k', '-e', '-f', '-b', '-p', '-R', '-P']);

/** Options and positional arguments of a command line. */
function options(words: string[]): { flags: Map<string, string | true>; args: string[] } {
  const flags = new Map<string, string | true>();
  const args: string[] = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w.startsWith('-')) {
      const eq = w.indexOf('=');
      if (eq > 0) flags.set(w.slice(0, eq), w.slice(eq + 1));
      else if (VALUE_OPTS.has(w) && i + 1 < words.length) flags.set(w, words[++i]!);
      else flags.set(w, true);
    } else if (!w.startsWith('>') && !w.startsWith('2>') && w !== '/dev/null') args.push(w);
  }
  return { flags, args };
}

function str(v: string | true | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Reads one maintainer script and adds what it would do to `d`. */
export function analyseScript(name: string, text: string, d: Duties): void {
  const first = text.split('\n', 1)[0]!;
  if (first.startsWith('#!') && !/\b(sh|bash|dash)\b/.test(first)) {
    // Only shell scripts are read; others (perl, python) are noted so a module author looks at them.
    d.other.push({ script: name, command: `(not a shell script: ${first})` });
    return;
  }
  for (const { words, debhelper } of shellCommands(text)) {
    const cmd = base(words[0]!);
    const src = `${name}: ${cmd}`;
    if (cmd === 'update-alternatives') {
      const i = words.indexOf('--install');
      if (i < 0 || i + 4 >= words.length) continue;
      const alt: AlternativeDuty = { link: words[i + 1]!, name: words[i + 2]!, path: words[i + 3]!, priority: Number(words[i + 4]), slaves: [], source: debhelper ? 'debhelper' : 'script' };
      for (let j = i + 5; j < words.length; j++) {
        if (words[j] === '--slave' && j + 3 < words.length) {
          alt.slaves.push({ link: words[j + 1]!, name: words[j + 2]!, path: words[j + 3]! });
          j += 3;
        }
      }
      d.alternatives.push(alt);
    } else if (cmd === 'adduser' || cmd === 'useradd') {
      const { flags, args } = options(words);
      const system = flags.has('--system') || flags.has('-r');
      if (cmd === 'adduser' && !system && args.length === 2 && !flags.has('--group')) {
        d.memberships.push({ user: args[0]!, group: args[1]!, source: src });
        continue;
      }
      const uname = args[args.length - 1];
      if (!uname) continue;
      if (cmd === 'adduser' && flags.has('--group') && !flags.has('--ingroup')) d.groups.push({ name: uname, system, source: src });
      const u: UserDuty = { name: uname, system, source: src };
      const group = str(flags.get('--ingroup')) ?? str(flags.get('-g')) ?? (flags.has('--group') || flags.has('-U') ? uname : undefined);
      if (group) u.group = group;
      const home = str(flags.get('--home')) ?? str(flags.get('-d'));
      if (home) u.home = home;
      const shell = str(flags.get('--shell')) ?? str(flags.get('-s'));
      if (shell) u.shell = shell;
      const uid = str(flags.get('--uid')) ?? str(flags.get('-u'));
      if (uid) u.uid = uid;
      const gecos = str(flags.get('--gecos')) ?? str(flags.get('--comment')) ?? str(flags.get('-c'));
      if (gecos) u.gecos = gecos;
      d.users.push(u);
    } else if (cmd === 'addgroup' || cmd === 'groupadd') {
      const { flags, args } = options(words);
      const gname = args[args.length - 1];
      if (!gname) continue;
      if (cmd === 'addgroup' && args.length === 2) { d.memberships.push({ user: args[0]!, group: args[1]!, source: src }); continue; }
      const g: GroupDuty = { name: gname, system: flags.has('--system') || flags.has('-r'), source: src };
      const gid = str(flags.get('--gid')) ?? str(flags.get('-g'));
      if (gid) g.gid = gid;
      d.groups.push(g);
    } else if (cmd === 'dpkg-divert') {
      const { flags, args } = options(words.map((w) => w));
      if (flags.has('--remove') || flags.has('--list') || flags.has('--truename') || flags.has('--listpackage')) continue;
      // dpkg-divert's value options take the next word.
      const get = (opt: string): string | undefined => {
        const k = words.indexOf(opt);
        return k >= 0 && k + 1 < words.length ? words[k + 1] : str(flags.get(opt));
      };
      const divertTo = get('--divert');
      const pkg = get('--package');
      const path = args.filter((a) => a !== divertTo && a !== pkg).pop();
      if (!path) continue;
      const div: DiversionDuty = { path, rename: flags.has('--rename'), source: src };
      if (divertTo) div.divertTo = divertTo;
      if (pkg) div.package = pkg;
      d.diversions.push(div);
    } else if (NOTABLE.has(cmd)) {
      const line = words.join(' ');
      if (!d.other.some((o) => o.script === name && o.command === line)) d.other.push({ script: name, command: line });
    }
  }
}

/** Reads a sysusers.d file: `u NAME ID "GECOS" HOME SHELL`, `g NAME ID`, `m USER GROUP`. */
export function analyseSysusers(file: string, text: string, d: Duties): void {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const words = shellCommands(line)[0]?.words ?? [];
    const [type, name, id, gecos, home, shell] = words;
    if (!type || !name) continue;
    const source = `sysusers.d/${file}`;
    if (type === 'u' || type === 'u!') {
      const u: UserDuty = { name, system: true, source };
      if (id && id !== '-') u.uid = id;
      if (gecos && gecos !== '-') u.gecos = gecos;
      if (home && home !== '-') u.home = home;
      if (shell && shell !== '-') u.shell = shell;
      d.users.push(u);
    } else if (type === 'g') {
      const g: GroupDuty = { name, system: true, source };
      if (id && id !== '-') g.gid = id;
      d.groups.push(g);
    } else if (type === 'm' && id) {
      d.memberships.push({ user: name, group: id, source });
    }
  }
}

/** An empty duty record. */
export function emptyDuties(): Duties {
  return { alternatives: [], users: [], groups: [], memberships: [], diversions: [], triggers: [], other: [] };
}

/**
 * The duties of one package from its control files (`preinst`, `postinst`, `triggers`, …) and
 * shipped sysusers.d files.
 */
export function analysePackage(control: Record<string, string>, sysusers: { file: string; text: string }[] = []): Duties {
  const d = emptyDuties();
  for (const script of ['preinst', 'postinst']) {
    const text = control[script];
    if (text !== undefined) analyseScript(script, text, d);
  }
  if (control.triggers) {
    for (const line of control.triggers.split('\n')) {
      const t = line.replace(/#.*/, '').trim();
      if (t) d.triggers.push(t);
    }
  }
  for (const s of sysusers) analyseSysusers(s.file, s.text, d);
  return d;
}
