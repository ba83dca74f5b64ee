/** The build stage: a configuration's evaluated options → derivations → the system's toplevel. */
export { buildSystem, hostPathNeedles, lockClosure, portableConfig, definitionSites, type BuildSystemOptions, type BuiltSystem } from './system.js';
export { findHostPaths, type HostPathHit } from './purity.js';
export { orderSnippets, activateScript, BUILTIN_SNIPPETS, type SnippetOption } from './activate.js';
export { etcEntries, etcDerivation, type EtcEntry } from './etc.js';
export { usersSpec, type UsersSpec } from './users.js';
export { chooseAlternatives, dutiesLayer, readDuties, type BuiltPackage, type ChosenAlternative } from './duties.js';
export { parsePamProfile, pamCommonFiles } from './pam.js';
export { treeDerivation, type TreeEntry } from './tree.js';
export { runtimeFiles, runtimeHash, type SelfArgs } from './self.js';
