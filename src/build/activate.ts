/**
 * The generation's `activate` script: the shell helpers of `scripts/activate/lib.sh`, the
 * generation's variables, and `system.activationScripts` in dependency order, each run by name.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../errors.js';
import { shellComment, shellQuote } from '../shell.js';
import { projectRoot } from '../paths.js';
import type { SnippetOption } from '../eval/spec.js';

export type { SnippetOption };

/** Snippets that the build itself provides (their bodies are functions of lib.sh). */
export const BUILTIN_SNIPPETS = new Set(['layout', 'users', 'etc', 'var']);

/**
 * Orders snippets so each runs after its dependencies; among those ready, by name (so the order
 * never depends on definition order). Unknown dependencies and cycles are errors naming the snippet.
 */
export function orderSnippets(snippets: Record<string, SnippetOption>): { name: string; text: string }[] {
  const norm = new Map(Object.entries(snippets).map(([n, s]) => [n, typeof s === 'string' ? { text: s, deps: [] as string[] } : s]));
  for (const [name, s] of norm) {
    for (const d of s.deps) {
      if (!norm.has(d)) throw new CairnError(`system.activationScripts.${name}.deps: there is no snippet named '${d}' (known: ${[...norm.keys()].sort().join(', ')})`);
    }
  }
  const done = new Set<string>();
  const out: { name: string; text: string }[] = [];
  const visiting: string[] = [];
  const visit = (name: string): void => {
    if (done.has(name)) return;
    const at = visiting.indexOf(name);
    if (at >= 0) throw new CairnError(`system.activationScripts: the snippets' deps form a cycle: ${[...visiting.slice(at), name].join(' -> ')}`);
    visiting.push(name);
    for (const d of [...norm.get(name)!.deps].sort()) visit(d);
    visiting.pop();
    done.add(name);
    out.push({ name, text: norm.get(name)!.text });
  };
  for (const name of [...norm.keys()].sort()) visit(name);
  return out;
}

/** Reads a file of `scripts/` (shipped with cairn; its text becomes part of derivations). */
export function scriptText(rel: string): string {
  return readFileSync(join(projectRoot, 'scripts', rel), 'utf8');
}

/** The variables a generation's scripts are specialised with. */
export interface ActivateVars {
  /** Logical path of the generation's bash (the shebang). */
  bash: string;
  sw: string;
  etc: string;
  /** The users spec store path (users, groups, users.awk). */
  users: string;
  mutableUsers: boolean;
}

/** The text of `activate`; `@out@` stands for the toplevel. */
export function activateScript(vars: ActivateVars, snippets: Record<string, SnippetOption>): string {
  const ordered = orderSnippets(snippets);
  const q = shellQuote;
  const parts = [
    `#!${vars.bash}`,
    '# Activation of a cairn generation: run at boot by its init and on every switch. Generated; do not edit.',
    'set -uo pipefail',
    'systemConfig=@out@',
    `sw=${vars.sw}`,
    `etcStore=${vars.etc}`,
    `usersStore=${vars.users}`,
    `mutableUsers=${vars.mutableUsers ? 1 : 0}`,
    '# CAIRN_ROOT activates a system under a folder (tests); CAIRN_STORE_DIR is where its store is readable.',
    'R="${CAIRN_ROOT:-}"',
    'S="${CAIRN_STORE_DIR:-/cairn/store}"',
    'export CAIRN_ROOT="$R"',
    'umask 022',
    scriptText('activate/lib.sh'),
    '# The generation\'s own tools, whatever the caller\'s PATH.',
    'export PATH="$swPhys/usr/bin:$swPhys/usr/sbin"',
    'cairn_load_builtins',
    '',
  ];
  ordered.forEach((s, i) => {
    const fn = `cairn_snippet_${i}`;
    parts.push(shellComment(`--- snippet ${s.name}`), `${fn}() {`, s.text.trimEnd() || ':', '}');
    if (BUILTIN_SNIPPETS.has(s.name)) parts.push(`cairn_run_snippet ${q(s.name)} ${fn}`);
    else {
      // Snippets act on /: under CAIRN_ROOT (a test root) they would touch the building machine.
      parts.push(
        `if [ -z "$R" ] || [ -n "\${CAIRN_ACTIVATE_ALL_SNIPPETS:-}" ]; then cairn_run_snippet ${q(s.name)} ${fn} plain; else echo ${q(`skipping snippet ${s.name} under CAIRN_ROOT`)} >&2; fi`,
      );
    }
  });
  parts.push(
    '',
    '# Volatile files systemd would make at boot; on a switch they are made now. Made only, never',
    "# removed (--remove): Debian's rules empty /tmp that way (`D /tmp`), meant for boot, when nothing",
    '# runs yet; on a running machine it would delete files in use and services\' private /tmp.',
    'if [ -z "$R" ] && [ -d /run/systemd/system ]; then',
    '  systemd-tmpfiles --create --exclude-prefix=/dev || echo "warning: systemd-tmpfiles failed" >&2',
    'fi',
    '',
    '[ -d "$R/run" ] || mkdir -p "$R/run"',
    'cairn_link "$systemConfig" "$R/run/current-system"',
    '# The running generation stays in the store as long as it runs (the store\'s GC roots on the system);',
    '# the link never changes, so it is made only when it does not lead to the running generation.',
    '[ "$R/cairn/var/gcroots/current-system" -ef "$R/run/current-system" ] || cairn_link /run/current-system "$R/cairn/var/gcroots/current-system"',
    'if [ "${#cairn_failed[@]}" -gt 0 ]; then',
    '  echo "error: activation of $systemConfig failed in: ${cairn_failed[*]}" >&2',
    '  exit 1',
    'fi',
    '',
  );
  return parts.join('\n');
}

/** The text of `init` (stage 2). */
export function initScript(vars: { bash: string; sw: string; systemd: string }): string {
  return scriptText('stage-2-init.sh').replace(/@bash@/g, vars.bash).replace(/@sw@/g, vars.sw).replace(/@systemd@/g, vars.systemd);
}

/** The text of `bin/switch-to-configuration` (see scripts/switch-to-configuration.sh). */
export function switchScript(vars: { bash: string; sw: string }): string {
  return scriptText('switch-to-configuration.sh').replace(/@bash@/g, vars.bash).replace(/@sw@/g, vars.sw);
}
