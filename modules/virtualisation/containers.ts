import type { ModuleArgs } from '../config.js';

/**
 * `virtualisation.containers`: the configuration the containers/* tools (podman, buildah, skopeo)
 * read from /etc/containers, with NixOS's options. Debian's golang-github-containers-common ships
 * the defaults (/usr/share/containers/containers.conf, /etc/containers/policy.json); the files
 * here are written only when something is set, and /etc/containers/containers.conf, read after
 * the packaged one, always (podman's network backend is chosen there).
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.virtualisation.containers;
  const toml = lib.formats.toml();
  const json = lib.formats.json();
  // A registry (host[:port][/path]) as registries.conf lists it.
  const registry = types.strMatching('[A-Za-z0-9][A-Za-z0-9.:/_-]*');
  const tomlList = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  return {
    options: {
      virtualisation: {
        containers: {
          enable: lib.mkEnableOption('the common containers configuration in /etc/containers (set by podman)'),
          containersConf: {
            settings: mkOption({
              type: toml.type,
              default: {},
              example: { engine: { cgroup_manager: 'systemd' } },
              description: 'containers.conf(5) settings, by table, written to /etc/containers/containers.conf (over the packaged defaults).',
            }),
          },
          storage: {
            settings: mkOption({
              type: toml.type,
              default: {},
              example: { storage: { driver: 'overlay', graphroot: '/var/lib/containers/storage', runroot: '/run/containers/storage' } },
              description: "containers-storage.conf(5) settings, written to /etc/containers/storage.conf when set; empty: the programs' built-in defaults (overlay below /var/lib/containers/storage).",
            }),
          },
          registries: {
            search: mkOption({
              type: types.listOf(registry),
              default: [],
              example: ['quay.io'],
              description: "Registries searched for short image names (`unqualified-search-registries`). NixOS's default names two public registries; cairn's is empty (short names must then be fully qualified or already loaded).",
            }),
            insecure: mkOption({ type: types.listOf(registry), default: [], description: 'Registries reached without TLS verification.' }),
            block: mkOption({ type: types.listOf(registry), default: [], description: 'Registries images are never pulled from.' }),
          },
          policy: mkOption({
            type: json.type,
            default: {},
            example: { default: [{ type: 'insecureAcceptAnything' }] },
            description: "The signature policy (containers-policy.json(5)) written to /etc/containers/policy.json; empty keeps Debian's (which accepts any image).",
          }),
        },
      },
    },
    config: mkIf(cfg.enable, {
      environment: {
        get etc() {
          const etc: Record<string, { text: string }> = {
            'containers/containers.conf': { text: toml.generate('virtualisation.containers.containersConf.settings', cfg.containersConf.settings) },
          };
          if (Object.keys(cfg.storage.settings).length > 0) etc['containers/storage.conf'] = { text: toml.generate('virtualisation.containers.storage.settings', cfg.storage.settings) };
          const r = cfg.registries;
          if (r.search.length + r.insecure.length + r.block.length > 0) {
            const entries = [...r.insecure.map((l) => ({ l, insecure: true, blocked: false })), ...r.block.map((l) => ({ l, insecure: false, blocked: true }))];
            etc['containers/registries.conf'] = {
              text: [
                `unqualified-search-registries = ${tomlList(r.search)}`,
                ...entries.map((e) => `\n[[registry]]\nlocation = ${JSON.stringify(e.l)}\ninsecure = ${e.insecure}\nblocked = ${e.blocked}`),
                '',
              ].join('\n'),
            };
          }
          if (Object.keys(cfg.policy as object).length > 0) etc['containers/policy.json'] = { text: json.generate('virtualisation.containers.policy', cfg.policy) };
          return etc;
        },
      },
    }),
  };
};
