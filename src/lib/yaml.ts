import { isAlias, isMap, isScalar, isSeq, LineCounter, parse, parseDocument, type Alias, type Document, type Node } from 'yaml';
import { CairnError } from '../errors.js';
import { setEntryLocation, type SourceLocation } from './location.js';
import { Merge, Order, ORDER, Override, PRIORITY } from './properties.js';
import { yamlOption } from './yaml-types.js';

/**
 * YAML for modules: plain values, with the position of every mapping entry and sequence item
 * kept beside them (for error messages), and NixOS's properties as tags:
 *
 *   hostName: !mkForce web1            priority 50
 *   hostName: !mkDefault web1          priority 1000
 *   hostName: !mkOverride 900 web1     any priority (scalars); `!mkOverride:900` before a mapping or list
 *   packages: !mkBefore [vim]          order 500; !mkAfter 1500; !mkOrder 700 [vim] / `!mkOrder:700`
 *   config: !mkMerge [{…}, {…}]        several definitions in one place
 *   options: { site: { title: !mkOption { type: str, default: Hello } } }   declarations (yaml-types.ts)
 */
export function parseYaml(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const at = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  try {
    const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
    if (doc.errors.length) {
      const e = doc.errors[0]!;
      throw new CairnError(`${fmt(at(e.pos[0]))}: invalid YAML: ${e.message.split('\n')[0]}`);
    }
    // A tag is written just before its value; the node's range starts at the value.
    const tagAt = (tag: string, valueOffset: number): SourceLocation => {
      const i = text.lastIndexOf(tag, valueOffset);
      return at(i >= 0 ? i : valueOffset);
    };
    return convert(doc.contents as Node | null, { doc, at, tagAt, anchors: new Map(), expanding: [], expanded: 0 });
  } catch (err) {
    // Nesting deeper than the stack (the parser's or ours) is the document's doing, not a bug.
    if (err instanceof RangeError && /call stack/.test(err.message)) throw new CairnError(`${file}: the YAML is nested too deeply`);
    throw err;
  }
}

const fmt = (l: SourceLocation): string => `${l.file}:${l.line}:${l.column}`;

/**
 * How many values aliases may expand to in one file. Each alias is a copy of its anchor's value,
 * so nested aliases multiply ("billion laughs": 9 levels of 10 aliases are 10^9 values); reusing
 * a few mappings dozens of times stays far below this.
 */
export const MAX_ALIAS_EXPANSION = 10_000;

interface Context {
  doc: Document;
  at: (offset: number) => SourceLocation;
  tagAt: (tag: string, valueOffset: number) => SourceLocation;
  /** Resolved aliases: the library's resolve() searches the whole document each time. */
  anchors: Map<Alias, Node>;
  /** The aliases being expanded, outermost first. */
  expanding: Alias[];
  /** Values made by expanding aliases so far. */
  expanded: number;
}

function convert(node: Node | null, cx: Context): unknown {
  if (node === null || node === undefined) return null;
  if (cx.expanding.length && ++cx.expanded > MAX_ALIAS_EXPANSION) {
    throw new CairnError(
      `${fmt(cx.at(cx.expanding[0]!.range![0]))}: YAML aliases expand to more than ${MAX_ALIAS_EXPANSION} values (the alias expansion limit); ` +
        'write the repeated values out, or reuse them from a TypeScript module',
    );
  }
  if (isAlias(node)) {
    let target = cx.anchors.get(node);
    if (target === undefined) cx.anchors.set(node, (target = node.resolve(cx.doc) as Node));
    if (cx.expanding.some((a) => cx.anchors.get(a) === target)) throw new CairnError(`${fmt(cx.at(node.range![0]))}: the alias \`*${node.source}' refers to a value that contains it`);
    cx.expanding.push(node);
    try {
      return convert(target, cx);
    } finally {
      cx.expanding.pop();
    }
  }
  const { at, tagAt } = cx;
  let value: unknown;
  if (isMap(node)) {
    const obj: Record<string, unknown> = {};
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      if (!isScalar(keyNode) || (typeof keyNode.value !== 'string' && typeof keyNode.value !== 'number' && typeof keyNode.value !== 'boolean')) {
        throw new CairnError(`${fmt(at(keyNode?.range?.[0] ?? node.range![0]))}: mapping keys must be plain names`);
      }
      const key = String(keyNode.value);
      // Defined, not assigned: a key `__proto__' is an entry like any other, not the prototype.
      Object.defineProperty(obj, key, { value: convert(pair.value as Node | null, cx), enumerable: true, writable: true, configurable: true });
      setEntryLocation(obj, key, at(keyNode.range![0]));
    }
    value = obj;
  } else if (isSeq(node)) {
    const arr: unknown[] = [];
    node.items.forEach((item, i) => {
      arr.push(convert(item as Node | null, cx));
      const r = (item as Node | null)?.range;
      if (r) setEntryLocation(arr, String(i), at(r[0]));
    });
    value = arr;
  } else if (isScalar(node)) {
    value = node.value;
  }
  const tag = node.tag;
  if (!tag || !tag.startsWith('!') || tag.startsWith('!!')) return value;
  return applyTag(tag, node, value, tagAt(tag, node.range![0]));
}

/** A tagged scalar's text re-read as YAML would have (plain `22` is a number, quoted stays text). */
function scalarContent(node: Node, text: string): unknown {
  return isScalar(node) && node.type === 'PLAIN' ? parse(text) : text;
}

function applyTag(tag: string, node: Node, value: unknown, loc: SourceLocation): unknown {
  const [name, suffix] = tag.slice(1).split(':', 2) as [string, string | undefined];
  const fixed: Record<string, (v: unknown) => unknown> = {
    mkForce: (v) => new Override(PRIORITY.force, v),
    mkDefault: (v) => new Override(PRIORITY.default, v),
    mkOptionDefault: (v) => new Override(PRIORITY.optionDefault, v),
    mkBefore: (v) => new Order(ORDER.before, v),
    mkAfter: (v) => new Order(ORDER.after, v),
  };
  if (name in fixed && suffix === undefined) {
    return fixed[name]!(isScalar(node) ? scalarContent(node, String(value)) : value);
  }
  if (name === 'mkOverride' || name === 'mkOrder') {
    let n: number;
    let content: unknown;
    if (suffix !== undefined) {
      n = Number(suffix);
      content = isScalar(node) ? scalarContent(node, String(value)) : value;
    } else {
      const m = isScalar(node) ? /^\s*(-?\d+)(?:\s+([\s\S]*))?$/.exec(String(value)) : null;
      if (!m) throw new CairnError(`${fmt(loc)}: \`!${name}' takes a number and a value: \`!${name} 900 value', or \`!${name}:900' before a mapping or list`);
      n = Number(m[1]);
      content = m[2] === undefined ? null : scalarContent(node, m[2]);
    }
    if (!Number.isInteger(n)) throw new CairnError(`${fmt(loc)}: \`!${name}' needs an integer, got \`${suffix}'`);
    return name === 'mkOverride' ? new Override(n, content) : new Order(n, content);
  }
  if (name === 'mkOption' && suffix === undefined) return yamlOption(value, loc);
  if (name === 'mkMerge' && suffix === undefined) {
    if (!Array.isArray(value)) throw new CairnError(`${fmt(loc)}: \`!mkMerge' takes a list of definitions`);
    return new Merge(value);
  }
  throw new CairnError(`${fmt(loc)}: unknown tag \`${tag}'; cairn knows !mkForce, !mkDefault, !mkOverride, !mkBefore, !mkAfter, !mkOrder, !mkMerge, !mkOption`);
}
