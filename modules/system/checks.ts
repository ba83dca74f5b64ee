import type { ModuleArgs } from '../config.js';

/**
 * `system.checks`: generated files checked at build time by the program that will read them
 * (`sshd -t`, `nginx -t`, `visudo -c`), taken from the system's own packages in the store, so a
 * broken setting fails `cairn build` instead of the service at boot. See src/build/checks.ts.
 */
export default ({ lib }: ModuleArgs) => {
  const { mkOption, types } = lib;
  // A word of the store's relative paths: no absolute paths, no `..`.
  const relPath = types.strMatching('[A-Za-z0-9_+.-]+(/[A-Za-z0-9_+.-]+)*');
  const command = types.listOf(types.str);
  const check = types.submodule({
    options: {
      enable: mkOption({ type: types.bool, default: true, description: 'Whether the check runs (off for a file that names what only the running system has, e.g. a certificate).' }),
      package: mkOption({ type: types.package, example: 'nginx', description: 'The Debian package the checking program belongs to; it must be one of the system\'s packages.' }),
      program: mkOption({ type: relPath, example: 'usr/sbin/nginx', description: 'The checking program: a path inside the system\'s packages, run with their own libraries (not the building machine\'s).' }),
      args: mkOption({ type: command, default: [], example: ['-t', '-q', '-c', '@dir@/nginx.conf'], description: 'Its arguments; `@dir@` is the scratch folder the `files` are written to.' }),
      setup: mkOption({
        type: types.listOf(command),
        default: [],
        example: [['usr/bin/ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', '@dir@/host_key']],
        description: 'Commands run before the check, each a program inside the system\'s packages and its arguments (e.g. a throwaway host key).',
      }),
      files: mkOption({ type: types.attrsNamed(types.strMatching('[A-Za-z0-9_+-][A-Za-z0-9_+.-]*'), types.str), default: {}, description: 'Files written to the scratch folder before the check, by name; `@dir@` in their text is that folder.' }),
      options: mkOption({
        type: types.listOf(types.nonEmptyStr),
        default: [],
        example: ['services.nginx.appendHttpConfig'],
        description: 'Option paths the files come from: a failure names them and where they were defined.',
      }),
    },
  });
  return {
    options: {
      system: {
        checks: mkOption({
          type: types.attrsOf(check),
          default: {},
          description:
            'Checks of generated files, run by `cairn build` (a failure fails the build with the checker\'s message and the options named). ' +
            'A check runs as an unprivileged user in a scratch folder, and its result is kept in the store: an unchanged check does not run again. ' +
            'Unlike NixOS, where `system.checks` is a list of derivations the toplevel depends on, this is an attribute set of commands, by name (the name starts the message).',
        }),
      },
    },
  };
};
