import type { ModuleArgs } from '../config.js';

/**
 * `image.*`: how large `cairn image --size auto` makes a disk. The root file system fits the
 * closure of every generation plus `headroom`; the EFI system partition fits the boot loader and
 * kernels with room for as many again (future generations), or has the size given.
 */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const size = types.strMatching('[0-9]+[KMGT]?');
  return {
    options: {
      image: {
        headroom: mkOption({
          type: size,
          default: '512M',
          example: '2G',
          description: 'Free space the root file system of an image has beyond the closure (with `--size auto`): room for /var, logs, new generations.',
        }),
        espSize: mkOption({
          type: types.either(types.enum(['auto']), size),
          default: 'auto',
          example: '256M',
          description: "Size of the image's EFI system partition; `auto` holds twice what the generations' entries need, at least 64M.",
        }),
      },
    },
  };
};
