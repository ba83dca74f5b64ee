/** The store: content-addressed, immutable paths, their builds, roots and garbage collection. */
export type { Derivation } from './derivation.js';
export { canonicalJson } from './derivation.js';
export type { BuildContext, BuildResult, Builder, SetuidEntry } from './builders.js';
export { registerBuilder, getBuilder } from './builders.js';
export { Store, referencesFirst, type PathInfo, type ParsedPath } from './store.js';
export { buildEnv, type BuildEnvArgs } from './buildenv.js';
export { collectGarbage, findRoots, type GcResult, type GcRoot } from './gc.js';
export { repairStore, verifyStore, type RepairResult, type VerifyProblem } from './verify.js';
export { diffClosures, formatBytes, formatChange, type ClosureChange } from './diff.js';
export { validateName, splitName, nameOf, hashOf, isStoreBaseName } from './storepath.js';
export { toNixBase32, hashPart } from './hash.js';
export { lexists, linkOrCopy, removeTree } from './fsutil.js';
