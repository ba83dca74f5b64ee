/**
 * A reference to a Debian package by name, as options of type `package` hold it. The package
 * layer resolves it to a version and a store path.
 */
export class Package {
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
  toJSON(): string {
    return this.name;
  }
}

const cache = new Map<string, Package>();

export function pkg(name: string): Package {
  let p = cache.get(name);
  if (!p) cache.set(name, (p = new Package(name)));
  return p;
}

/** `pkgs.nginx`, `pkgs['openssh-server']`: package references for modules. */
export const pkgs: Record<string, Package> = new Proxy({} as Record<string, Package>, {
  get: (_t, key) => (typeof key === 'string' ? pkg(key) : undefined),
});
