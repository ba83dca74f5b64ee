import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Mustache from 'mustache';
import { projectRoot } from './paths.js';

/**
 * Templates live beside the module that renders them: `services/openssh.sshd_config` is
 * modules/services/openssh.sshd_config.mustache (`<module>.<file>.mustache`).
 */
export const templatesPath = resolve(projectRoot, 'modules');

const cache = new Map<string, string>();

/** The text of `modules/<name>.mustache`, read once per process. */
function loadTemplate(name: string): string {
  let t = cache.get(name);
  if (t === undefined) {
    if (!/^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/.test(name)) throw new Error(`bad template name \`${name}'`);
    t = readFileSync(resolve(templatesPath, `${name}.mustache`), 'utf8');
    Mustache.parse(t);
    cache.set(name, t);
  }
  return t;
}

/**
 * Renders `modules/<name>.mustache` with `view`. Nothing is HTML-escaped: the outputs are
 * configuration files, so values must be made safe for their format by the module that builds the
 * view (quoting, one entry per line). Partials are other templates, by the same names.
 */
export function renderTemplate(name: string, view: object): string {
  return Mustache.render(loadTemplate(name), view, (partial) => loadTemplate(partial), { escape: (s: string) => s });
}
