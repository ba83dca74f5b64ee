// The module system, split along NixOS's lib/modules.nix (see src/lib/modules/): this file keeps
// the one import path for what the rest of cairn uses of it.
export { isModulePath, modulesPath } from './modules/paths.js';
export { SourcedModule, type CollectedModule, type ModuleArgs, type ModuleFunction, type ModuleInput, type ModuleLoader } from './modules/syntax.js';
export { Declarations, NamespaceNode, OptionNode } from './modules/declarations.js';
export { OptionState, type OptionDocFields, type OptionInfo } from './modules/option-values.js';
export { EVALUATION, evaluationOf, Evaluation, evalModules, evalModulesSync, evalSubmodule, submoduleDeclarations, type EvalModulesOptions } from './modules/evaluation.js';
export { Thunk } from './properties.js';
