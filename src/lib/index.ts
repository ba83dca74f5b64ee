/** The module system: what modules receive as `lib`, and the evaluator. */
export { lib, type Lib } from './lib.js';
export { types, mkOptionType, isType, type OptionType, type JsonSchema } from './types.js';
export { mkOption, mkEnableOption, mkPackageOption, Option, type OptionDeclaration } from './options.js';
export { mkIf, mkMerge, mkOverride, mkDefault, mkForce, mkOptionDefault, mkOrder, mkBefore, mkAfter, PRIORITY, ORDER } from './properties.js';
export { evalModules, evalModulesSync, Evaluation, Declarations, OptionNode, NamespaceNode, SourcedModule, modulesPath, evaluationOf, OptionState, type ModuleInput, type ModuleArgs, type OptionInfo, type OptionDocFields } from './modules.js';
export { OptionError } from './merge.js';
export { Package, pkg, pkgs } from './package.js';
export { formatLocation, type SourceLocation } from './location.js';
export { showOption, showValue } from './show.js';
export type { CommonUnit, EtcEntry, SectionEntries, UnitKind, UnitValue } from './systemd.js';
export type { FileSystem, Swap } from './filesystems.js';
