import type { ModuleArgs } from '../config.js';

/**
 * NixOS's names for options cairn spells otherwise, so that a NixOS configuration's lines keep
 * their meaning: each sets the cairn option it stands for, without a warning.
 */
export default ({ lib }: ModuleArgs) => ({
  imports: [
    // A package set in NixOS (`pkgs.linuxPackages_6_1`), the kernel package here (`linux-image-cloud-amd64`).
    lib.mkAliasOptionModule(['boot', 'kernelPackages'], ['boot', 'kernelPackage']),
    // pam_env sets both for every session; cairn writes environment.variables for PAM and for shells alike.
    lib.mkAliasOptionModule(['environment', 'sessionVariables'], ['environment', 'variables']),
  ],
});
