import { dirname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { defaultIdentities, editSecret, findRules, loadRules, rekey } from '../../secrets/index.js';

interface CommonArgs {
  rules?: string;
  identity?: string[];
}

const common = <T>(y: Argv<T>) =>
  y
    .option('rules', { type: 'string', describe: 'The rules file (default: secrets.yaml, secrets.yml or secrets.json here, else beside the file)' })
    .option('identity', { alias: 'i', type: 'string', array: true, describe: 'A private key that decrypts (default: ~/.ssh/id_ed25519, ~/.ssh/id_rsa)' });

const editCommand: CommandModule<object, CommonArgs & { file: string }> = {
  command: 'edit <file>',
  describe: 'Decrypt FILE into a private temporary file, run $EDITOR on it, and encrypt it again to the recipients of the rules file (a new FILE when it does not exist)',
  builder: (y) => common(y).positional('file', { type: 'string', demandOption: true, describe: 'The encrypted file (.age)' }),
  handler: (args) => {
    const rules = loadRules(findRules(args.rules, [process.cwd(), dirname(resolve(args.file))]));
    // As agenix: without $EDITOR and with stdin not a terminal, the new plaintext is read from stdin.
    const editor = process.env.EDITOR || (process.stdin.isTTY ? 'vi' : null);
    const result = editSecret(args.file, { rules, identities: defaultIdentities(args.identity), editor });
    process.stderr.write(result === 'written' ? `encrypted ${args.file}\n` : `${args.file} is unchanged; not encrypted again\n`);
  },
};

const rekeyCommand: CommandModule<object, CommonArgs & { files?: string[] }> = {
  command: 'rekey [files..]',
  describe: "Encrypt the rules file's secrets (or FILES) again to their current recipients (after a key was added or removed)",
  builder: (y) => common(y).positional('files', { type: 'string', array: true, describe: 'Encrypted files (default: every file of the rules file)' }),
  handler: (args) => {
    const files = args.files ?? [];
    const rules = loadRules(findRules(args.rules, [process.cwd(), ...files.map((f) => dirname(resolve(f)))]));
    for (const f of rekey(files, rules, defaultIdentities(args.identity))) process.stderr.write(`rekeyed ${f}\n`);
  },
};

const secretsCommand: CommandModule<object, object> = {
  command: 'secrets <command>',
  describe: 'Age-encrypted secrets of a configuration (age.secrets): edit, rekey',
  builder: (y) =>
    y
      .command(editCommand as CommandModule<object, CommonArgs & { file: string }>)
      .command(rekeyCommand as CommandModule<object, CommonArgs & { files?: string[] }>)
      .demandCommand(1, 'Name a secrets command; see `cairn secrets --help`.') as unknown as Argv<object>,
  handler: () => {},
};

/** `cairn secrets`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const secretsCommands: CommandModule<any, any>[] = [secretsCommand];
