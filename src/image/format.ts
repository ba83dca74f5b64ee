/**
 * Image formats are data: `images/<name>.json` says which partitions a disk has, what fills them
 * and what file comes out. The assembler has one code path; a format only chooses among its
 * options. A user may pass a format file of their own (`--format ./my-format.json`).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CairnError, UsageError } from '../errors.js';
import { projectRoot } from '../paths.js';

export type PartitionRole = 'esp' | 'root' | 'bios';

export interface PartitionSpec {
  /**
   * What fills it: the boot loaders' files, kernels and entries (`esp`), the system (`root`), or
   * GRUB's core image (`bios`, the BIOS boot partition: no file system).
   */
  role: PartitionRole;
  fsType?: 'vfat' | 'ext4';
  /** File system label; for the root, the configuration's `fileSystems."/"` decides. */
  label?: string;
  /** `auto` (fit the contents) or a size such as `512M`, `2G`. */
  size: string;
  /** Lower bound for `auto`. */
  minSize?: string;
}

export interface ImageFormat {
  name: string;
  description: string;
  aliases: string[];
  output: 'raw' | 'qcow2';
  extension: string;
  partitions: PartitionSpec[];
  /** `console=` added to every entry unless the generation already names that console. */
  serialConsole?: string;
}

/** Folder of the built-in formats. */
export const IMAGES_DIR = join(projectRoot, 'images');

const SIZE = /^(\d+)([KMGT]?)$/;

/** Bytes of a size such as `64M` (binary units); a CairnError naming `what` when malformed. */
export function parseSize(text: string, what: string): number {
  const m = SIZE.exec(text.trim());
  if (!m) throw new CairnError(`${what}: '${text}' is not a size (a number with an optional K, M, G or T suffix, e.g. 512M)`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ');
}

/** Checks a parsed format file; every problem names the file and the field. */
function checkFormat(name: string, file: string, v: unknown): ImageFormat {
  const fail = (field: string, msg: string): never => {
    throw new CairnError(`image format ${file}: ${field}: ${msg}`);
  };
  if (!v || typeof v !== 'object' || Array.isArray(v)) fail('(top)', 'expected an object');
  const o = v as Record<string, unknown>;
  const known = ['description', 'aliases', 'output', 'extension', 'partitions', 'serialConsole'];
  for (const k of Object.keys(o)) if (!known.includes(k)) fail(k, `unknown field (known: ${known.join(', ')})`);
  if (o.output !== 'raw' && o.output !== 'qcow2') fail('output', `expected "raw" or "qcow2", got ${JSON.stringify(o.output)}`);
  if (typeof o.extension !== 'string' || !/^[a-z0-9]+$/.test(o.extension)) fail('extension', 'expected a file extension such as "img"');
  if (o.aliases !== undefined && (!Array.isArray(o.aliases) || o.aliases.some((a) => typeof a !== 'string'))) fail('aliases', 'expected a list of names');
  if (o.serialConsole !== undefined && (typeof o.serialConsole !== 'string' || /\s/.test(o.serialConsole))) fail('serialConsole', 'expected a console such as "ttyS0,115200"');
  if (!Array.isArray(o.partitions)) return fail('partitions', 'expected a list');
  const parts = o.partitions.map((p, i): PartitionSpec => {
    const at = `partitions[${i}]`;
    if (!p || typeof p !== 'object') fail(at, 'expected an object');
    const q = p as Record<string, unknown>;
    for (const k of Object.keys(q)) if (!['role', 'fsType', 'label', 'size', 'minSize'].includes(k)) fail(`${at}.${k}`, 'unknown field');
    if (q.role !== 'esp' && q.role !== 'root' && q.role !== 'bios') fail(`${at}.role`, 'expected "esp", "root" or "bios"');
    const want = q.role === 'esp' ? 'vfat' : q.role === 'root' ? 'ext4' : undefined;
    if (q.fsType !== want) fail(`${at}.fsType`, want ? `the ${q.role} partition is ${want}` : 'the bios partition has no file system');
    if (q.label !== undefined && (typeof q.label !== 'string' || q.label.length === 0)) fail(`${at}.label`, 'expected a non-empty string');
    if (typeof q.size !== 'string') fail(`${at}.size`, 'expected "auto" or a size such as "512M"');
    if (q.size !== 'auto') parseSize(q.size as string, `image format ${file}: ${at}.size`);
    else if (q.role === 'bios') fail(`${at}.size`, 'the bios partition needs a size (e.g. "1M")');
    if (q.minSize !== undefined) parseSize(String(q.minSize), `image format ${file}: ${at}.minSize`);
    return q as unknown as PartitionSpec;
  });
  for (const role of ['esp', 'root'] as const) {
    if (parts.filter((p) => p.role === role).length !== 1) fail('partitions', `needs exactly one partition with role "${role}"`);
  }
  if (parts.filter((p) => p.role === 'bios').length > 1) fail('partitions', 'has more than one partition with role "bios"');
  return {
    name,
    description: typeof o.description === 'string' ? o.description : '',
    aliases: (o.aliases as string[] | undefined) ?? [],
    output: o.output as 'raw' | 'qcow2',
    extension: o.extension as string,
    partitions: parts,
    ...(o.serialConsole ? { serialConsole: o.serialConsole as string } : {}),
  };
}

function loadFile(file: string): ImageFormat {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CairnError(`image format ${file}: ${(err as Error).message}`);
  }
  return checkFormat(basename(file, '.json'), file, parsed);
}

/** The built-in formats, by name. */
export function builtinFormats(): ImageFormat[] {
  return readdirSync(IMAGES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => loadFile(join(IMAGES_DIR, f)));
}

/** A format by name or alias (`raw`, `qcow2`, `raw-efi`, …), or a format file (`./x.json`). */
export function findFormat(nameOrFile: string): ImageFormat {
  if (nameOrFile.endsWith('.json') || nameOrFile.includes('/')) {
    const file = resolve(nameOrFile);
    if (!existsSync(file)) throw new UsageError(`no image format file ${file}`);
    return loadFile(file);
  }
  const all = builtinFormats();
  const found = all.find((f) => f.name === nameOrFile || f.aliases.includes(nameOrFile));
  if (!found) throw new UsageError(`unknown image format '${nameOrFile}' (known: ${all.flatMap((f) => [f.name, ...f.aliases]).join(', ')}; or a .json format file)`);
  return found;
}
