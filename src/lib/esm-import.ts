/**
 * import() of configuration modules and their bundles. The CLI runs
 * as a script when it can (bin/cairn.js: V8 keeps compiled code for a script, for an ES module
 * not), and a script's own import() finds no loader: the entry gives its import() here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const runtimeImport: { of: (specifier: string) => Promise<any> } = { of: (specifier) => import(specifier) };
