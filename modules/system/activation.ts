import type { ModuleArgs } from '../config.js';

/**
 * `system.activationScripts.<name>`: shell snippets run (as root, by bash) when a generation is
 * activated, at boot and on switch. Each may name snippets it must run after (`deps`); the build
 * stage orders them topologically into the generation's `activate` script.
 */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  const snippet = types.submodule({
    options: {
      text: mkOption({ type: types.lines, description: 'The shell commands. They must be idempotent: they run at every boot and switch.' }),
      deps: mkOption({ type: types.listOf(types.singleLineStr), default: [], description: 'Snippets that must run before this one.' }),
    },
  });
  return {
    options: {
      system: {
        activationScripts: mkOption({
          // A plain string is a snippet without dependencies.
          type: types.attrsNamed(types.singleLineStr, types.either(types.str, snippet)),
          default: {},
          example: { 'var-www': { text: 'mkdir -p /var/www', deps: ['users'] } },
          description: 'Snippets of the activation script, by name.',
        }),
      },
    },
  };
};
