import { CairnError } from '../errors.js';
import { evaluationOf, NamespaceNode, OptionNode, showOption, type Declarations, type Evaluation, type OptionDocFields, type OptionType } from '../lib/index.js';
import type { SourceLocation } from '../lib/location.js';
import { closest } from '../lib/show.js';

/** `services.nginx.virtualHosts."a.example".root` → its segments. */
export function parseOptionPath(text: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|([^.]+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) out.push(m[1] !== undefined ? JSON.parse(`"${m[1]}"`) : m[2]!);
  if (out.length === 0) throw new CairnError(`\`${text}' is not an option path`);
  return out;
}

export interface FoundOption extends OptionDocFields {
  type: OptionType;
  /** Present when a configuration was evaluated and the option belongs to a value in it. */
  value?: () => unknown;
  definitions?: () => { loc: SourceLocation; value: unknown }[];
}

/**
 * Finds an option by path: through namespaces, into values (users.users.alice.uid) when a
 * configuration was evaluated, or through the documentation path (users.users.<name>.uid).
 */
export function findOption(ev: Evaluation, segments: string[]): FoundOption | { namespace: string[]; children: string[] } {
  let decls: Declarations = ev.decls;
  let current: Evaluation | undefined = ev;
  let i = 0;
  let ns: NamespaceNode = decls.root;
  const walked: string[] = [...ev.prefix];
  while (i < segments.length) {
    const child = ns.children.get(segments[i]!);
    if (!child) {
      throw new CairnError(`The option \`${showOption([...walked, segments[i]!])}' does not exist.${suggest(ns, segments[i]!, walked)}`);
    }
    walked.push(segments[i++]!);
    if (child instanceof NamespaceNode) {
      ns = child;
      continue;
    }
    if (i === segments.length) return describe(child, current, walked);
    // Below an option: into its value (a configuration) or its type (documentation).
    let type: OptionType = child.type;
    let value: unknown = current ? current.option(child.path).value : undefined;
    for (;;) {
      const elem = type.elemSegment === undefined ? undefined : type.nestedTypes.elemType;
      // A type with options of its own (a submodule): its value's evaluation, or its declarations.
      const sub = elem ? undefined : type.getSubOptions();
      if (sub) {
        current = evaluationOf(value);
        decls = current ? current.decls : sub.declarations;
        ns = decls.root;
        break;
      }
      if (i >= segments.length) throw new CairnError(`\`${showOption(walked)}' holds ${type.description}; name an option inside it.`);
      if (!elem) throw new CairnError(`\`${showOption(walked)}' holds ${type.description}, which has no options inside.`);
      // An element type under a name or position takes a segment (`<name>`, `*`: any); nullOr's is the value itself.
      const below = type.elemSegment !== '';
      type = elem;
      if (!below) continue;
      const seg = segments[i++]!;
      walked.push(seg);
      if (value !== undefined && seg !== '<name>' && seg !== '*') {
        const container = value as Record<string, unknown>;
        if (!(seg in container)) throw new CairnError(`\`${showOption(walked)}' is not defined.`);
        value = container[seg];
      } else value = undefined;
    }
  }
  return { namespace: walked, children: [...ns.children.keys()] };
}

function suggest(ns: NamespaceNode, name: string, walked: string[]): string {
  const near = closest(name, ns.children.keys());
  return near ? ` Did you mean \`${showOption([...walked, near])}'?` : '';
}

function describe(node: OptionNode, ev: Evaluation | undefined, path: string[]): FoundOption {
  const d = node.decl;
  const found: FoundOption = {
    path: showOption(path),
    type: node.type,
    description: d.description,
    declarations: node.declarations,
    defaultText: d.defaultText,
    example: d.example,
    readOnly: d.readOnly ?? false,
  };
  const dd = Object.getOwnPropertyDescriptor(d, 'default');
  if (dd && !dd.get) found.default = dd.value;
  if (ev) {
    const state = ev.option(node.path);
    found.value = () => state.value;
    found.definitions = () => state.definitions;
  }
  return found;
}

export interface DocumentedOption extends OptionDocFields {
  /** The type's description. */
  type: string;
}

/** Every visible option, submodule options included (`users.users.<name>.uid`, `*` for lists). */
export function documentedOptions(decls: Declarations): DocumentedOption[] {
  const out: DocumentedOption[] = [];
  const walk = (d: Declarations, prefix: string[]): void => {
    for (const node of d.options()) {
      const decl = node.decl;
      if (decl.internal || decl.visible === false || node.option.special.removed) continue;
      const path = [...prefix, ...node.path];
      if (decl.visible !== 'transparent') {
        const dd = Object.getOwnPropertyDescriptor(decl, 'default');
        out.push({
          path: showOption(path),
          type: node.type.description,
          description: decl.description,
          default: dd && !dd.get ? dd.value : undefined,
          defaultText: decl.defaultText ?? (dd?.get ? '(computed)' : undefined),
          example: decl.example,
          readOnly: decl.readOnly ?? false,
          declarations: node.declarations,
        });
      }
      if (decl.visible === 'shallow') continue;
      const sub = node.type.getSubOptions(path);
      if (sub) walk(sub.declarations, sub.prefix);
    }
  };
  walk(decls, [...decls.prefix]);
  return out;
}
