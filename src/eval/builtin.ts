import { resolve } from 'node:path';
import { modulesPath, SourcedModule } from '../lib/index.js';
import { importBuiltinModules } from './module-imports.js';

let loaded: Promise<SourcedModule[]> | undefined;

/**
 * cairn's built-in modules: every module file of modules/ (see moduleFiles), no list to edit. Each
 * is keyed and located by its source file (the key of `disabledModules`, the place in messages).
 * Imported once per process, on first use.
 */
export function builtinModules(): Promise<SourcedModule[]> {
  loaded ??= importBuiltinModules().then((mods) =>
    mods.map(([rel, mod]) => {
      const file = resolve(modulesPath, rel);
      return new SourcedModule(mod, { file }, file);
    }),
  );
  return loaded;
}
