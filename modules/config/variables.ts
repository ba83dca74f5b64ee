import type { ModuleArgs } from '../config.js';

/**
 * `environment.variables`: variables of every login session. They are written twice: to
 * /etc/environment, which pam_env reads for every PAM session (ssh, login, su, sudo), and to
 * /etc/profile.d/cairn-environment.sh for shells started without PAM. A list joins with `:`.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const vars = Object.entries(config.environment.variables).map(([name, v]) => ({ name, value: Array.isArray(v) ? v.join(':') : v }));
  return {
    options: {
      environment: {
        variables: mkOption({
          type: types.attrsNamed(types.envName, types.either(types.singleLineStr, types.listOf(types.strMatching('[^:\\x00-\\x1f\\x7f]*')))),
          default: {},
          example: { EDITOR: 'vim', PATH_EXTRA: ['/opt/a/bin', '/opt/b/bin'] },
          description: 'Environment variables of login sessions; a list is joined with `:`.',
        }),
      },
    },
    config: mkIf(vars.length > 0, {
      environment: {
        etc: {
          environment: { text: lib.renderTemplate('config/variables.environment', { vars: vars.map((v) => ({ ...v, quoted: JSON.stringify(v.value) })) }) },
          'profile.d/cairn-environment.sh': { text: lib.renderTemplate('config/variables.environment.sh', { vars: vars.map((v) => ({ ...v, quoted: lib.shellQuote(v.value) })) }) },
        },
      },
    }),
  };
};
