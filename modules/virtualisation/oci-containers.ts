import type { Config, ModuleArgs } from '../config.js';

type Container = Config['virtualisation']['oci-containers']['containers'][string];

/** A port number as docker and podman take it: 1-65535, no leading zero. */
const PORT = '(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})';
/** A port or a range of them. */
const PORTS = `${PORT}(?:-${PORT})?`;
/** `[ip:][hostPort:]containerPort[/proto]`, the IP v4 or bracketed v6, ports or ranges (the host's may be empty after an IP). */
const PORT_MAPPING = new RegExp(`^(?:(?:(?:[0-9]{1,3}(?:\\.[0-9]{1,3}){3}|\\[[0-9A-Fa-f:.]+\\]):(?:${PORTS})?:)|(?:${PORTS}:))?${PORTS}(?:/(?:tcp|udp|sctp))?$`);

/** The first and last port of `a` or `a-b`. */
const range = (s: string): [number, number] => {
  const [a, b] = s.split('-').map(Number) as [number, number | undefined];
  return [a, b ?? a];
};

/** Whether a port mapping is well-formed and its ranges agree (a host range for one container port is allowed). */
function portMappingOk(v: unknown): boolean {
  if (typeof v !== 'string' || !PORT_MAPPING.test(v)) return false;
  const parts = v.replace(/\/[a-z]+$/, '').replace(/^\[[^\]]*\]/, 'ip').split(':');
  const container = range(parts[parts.length - 1]!);
  const hostPart = parts.length >= 2 ? parts[parts.length - 2]! : '';
  if (container[0] > container[1]) return false;
  if (hostPart === '' || hostPart === 'ip' || /\./.test(hostPart)) return true;
  const host = range(hostPart);
  if (host[0] > host[1]) return false;
  return container[0] === container[1] || host[1] - host[0] === container[1] - container[0];
}

/**
 * `virtualisation.oci-containers`: OCI (Docker) containers run as systemd services, with NixOS's
 * options and units: container `<name>` is `<backend>-<name>.service` (`podman-web`,
 * `docker-web`), which loads `imageFile` (when given), removes a stale container of that name, and
 * runs the container (podman: detached, conmon notifying systemd; docker: in the foreground);
 * stopping the unit stops and removes it, so each start is a new container. Every argument
 * reaches the shell as one quoted word. `dependsOn` names other containers, whose units this one
 * requires and starts after. The backend is podman by default, as in NixOS since 22.05, and is
 * enabled with the first container.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.virtualisation['oci-containers'];
  const q = lib.shellQuote;
  // docker's and podman's rule for container names: they are also unit and folder names.
  const containerName = types.strMatching('[A-Za-z0-9][A-Za-z0-9_.-]*');
  const portMapping = lib.mkOptionType({
    name: 'portMapping',
    description: 'port mapping ([IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp|sctp], ports 1-65535 or ranges FROM-TO of the same length)',
    descriptionClass: 'noun',
    check: portMappingOk,
    merge: types.str.merge,
    jsonSchema: () => ({ type: 'string', pattern: PORT_MAPPING.source }),
  });
  // An image reference (`registry/name:tag`, `name@sha256:…`): no whitespace, never read as an option.
  const imageRef = types.strMatching('[A-Za-z0-9][A-Za-z0-9._/:@+-]*');
  const line = types.singleLineStr;

  const container = types.submodule(({ name }: ModuleArgs) => ({
    options: {
      image: mkOption({ type: imageRef, example: 'localhost/web:latest', description: 'The OCI image to run; with `imageFile`, the name and tag of the image in that file.' }),
      imageFile: mkOption({
        type: types.nullOr(types.path),
        default: null,
        example: '/srv/images/web.tar',
        description:
          'An image archive (`docker save`/`podman save` output, docker-archive or OCI) loaded before the container runs, instead of pulling `image`. ' +
          "It is a file on the building machine, copied into the system (NixOS's image derivation): a new file restarts the container at the next switch.",
      }),
      serviceName: mkOption({
        type: types.unitBaseName,
        get default() {
          return `${cfg.backend}-${name}`;
        },
        defaultText: '<backend>-<name>',
        description: 'The systemd service that runs the container.',
      }),
      cmd: mkOption({ type: types.listOf(types.str), default: [], example: ['--port=9000'], description: "Arguments of the image's entrypoint." }),
      entrypoint: mkOption({ type: types.nullOr(types.str), default: null, example: '/bin/my-app', description: "The program run instead of the image's entrypoint." }),
      environment: mkOption({
        type: types.attrsNamed(types.strMatching('[^=\\x00-\\x1f\\x7f]+'), types.str),
        default: {},
        example: { DATABASE_HOST: 'db.example.com', DATABASE_PORT: '3306' },
        description: "Environment variables of the container. They are in the unit's command line, readable by every user: secrets belong in `environmentFiles`.",
      }),
      environmentFiles: mkOption({
        type: types.listOf(types.path),
        default: [],
        example: ['/run/secrets/web.env'],
        description: 'Files of `NAME=value` lines added to the environment (`--env-file`); outside the store, e.g. a secret of `age.secrets`.',
      }),
      labels: mkOption({ type: types.attrsNamed(types.strMatching('[^=\\x00-\\x1f\\x7f]+'), types.str), default: {}, description: 'Labels of the container.' }),
      'log-driver': mkOption({ type: types.strMatching('[a-z][a-z0-9_-]*'), default: 'journald', description: "The container's log driver; journald puts its output in the unit's journal." }),
      ports: mkOption({
        type: types.listOf(portMapping),
        default: [],
        example: ['127.0.0.1:8080:9000', '8443:443/tcp', '1234-1236:1234-1236'],
        description:
          'Ports published from the container on the host: `IP:HOSTPORT:CONTAINERPORT`, `IP::CONTAINERPORT`, `HOSTPORT:CONTAINERPORT` or `CONTAINERPORT`, ports or ranges, `/udp` for UDP. ' +
          'A published port bypasses the firewall: publish on 127.0.0.1 what must not be reachable from the network.',
      }),
      user: mkOption({ type: types.nullOr(line), default: null, example: 'nobody:nogroup', description: 'The user (and group), by name or number, the container runs as.' }),
      volumes: mkOption({
        type: types.listOf(line),
        default: [],
        example: ['volume_name:/path/inside/container', '/path/on/host:/path/inside/container:ro'],
        description: 'Volumes and host folders mounted in the container (`SRC:DST[:OPTIONS]`). podman refuses a host folder that does not exist: make it (systemd.tmpfiles).',
      }),
      workdir: mkOption({ type: types.nullOr(line), default: null, example: '/var/lib/hello_world', description: 'The working directory in the container.' }),
      hostname: mkOption({ type: types.nullOr(line), default: null, description: "The container's host name." }),
      dependsOn: mkOption({
        type: types.listOf(containerName),
        default: [],
        example: ['db'],
        description: 'Other containers (names in `virtualisation.oci-containers.containers`) this one needs: its unit requires theirs and starts after them.',
      }),
      preRunExtraOptions: mkOption({ type: types.listOf(types.str), default: [], example: ['--runtime', 'runc'], description: 'More arguments of the backend, before `run`.' }),
      extraOptions: mkOption({ type: types.listOf(types.str), default: [], example: ['--network=host'], description: 'More arguments of `run`.' }),
      autoStart: mkOption({ type: types.bool, default: true, description: 'Whether the container starts at boot; otherwise only when its unit is started.' }),
      pull: mkOption({ type: types.enum(['always', 'missing', 'never', 'newer']), default: 'missing', description: 'When the image is pulled (`newer` is podman\'s only).' }),
      privileged: mkOption({ type: types.bool, default: false, description: 'Whether the container runs privileged (all capabilities and devices).' }),
      autoRemoveOnStop: mkOption({ type: types.bool, default: true, description: 'Whether the container is removed when it stops (`--rm`).' }),
      networks: mkOption({ type: types.listOf(line), default: [], description: 'Networks the container joins (`--network`).' }),
      devices: mkOption({ type: types.listOf(line), default: [], example: ['/dev/dri:/dev/dri'], description: 'Devices of the host given to the container.' }),
      capabilities: mkOption({
        type: types.attrsNamed(types.strMatching('[A-Za-z_]+'), types.nullOr(types.bool)),
        default: {},
        example: { SYS_ADMIN: true, NET_RAW: false },
        description: 'Capabilities added (true) or dropped (false); null keeps the default.',
      }),
    },
  }));

  /** Where a container's image file is on the running system: named by its contents, so a new image changes the unit. */
  const imagePath = (c: Container): string | null => (c.imageFile === null ? null : `cairn/oci-images/${lib.hashFile(c.imageFile)}.tar`);

  /** The unit of one container. */
  const unit = (name: string, c: Container) => {
    const backend = cfg.backend;
    const podman = backend === 'podman';
    const cidFile = `/run/podman-${name}/ctr-id`;
    const image = imagePath(c);
    const deps = c.dependsOn.filter((d) => d in cfg.containers).map((d) => `${cfg.containers[d]!.serviceName}.service`);
    const run = [
      backend,
      ...c.preRunExtraOptions.map(q),
      'run',
      `--name=${name}`,
      `--log-driver=${q(c['log-driver'])}`,
      ...(c.entrypoint !== null ? [`--entrypoint=${q(c.entrypoint)}`] : []),
      ...(c.hostname !== null ? [`--hostname=${q(c.hostname)}`] : []),
      // Detached with conmon notifying systemd: the unit is ready when the container runs.
      ...(podman ? [`--cidfile=${cidFile}`, '--cgroups=enabled', '--sdnotify=conmon', '-d', '--replace'] : []),
      ...Object.entries(c.environment).map(([k, v]) => `-e ${q(`${k}=${v}`)}`),
      ...c.environmentFiles.map((f) => `--env-file ${q(f)}`),
      ...c.ports.map((p) => `-p ${q(p)}`),
      ...(c.user !== null ? [`-u ${q(c.user)}`] : []),
      ...c.volumes.map((v) => `-v ${q(v)}`),
      ...Object.entries(c.labels).map(([k, v]) => `-l ${q(`${k}=${v}`)}`),
      ...(c.workdir !== null ? [`-w ${q(c.workdir)}`] : []),
      ...(c.privileged ? ['--privileged'] : []),
      ...(c.autoRemoveOnStop ? ['--rm'] : []),
      ...Object.entries(c.capabilities).flatMap(([k, v]) => (v === true ? [`--cap-add=${q(k)}`] : v === false ? [`--cap-drop=${q(k)}`] : [])),
      ...c.devices.map((d) => `--device=${q(d)}`),
      ...[...new Set(c.networks)].map((n) => `--network=${q(n)}`),
      `--pull=${c.pull}`,
      ...c.extraOptions.map(q),
      q(c.image),
      ...c.cmd.map(q),
    ];
    return {
      description: `${backend === 'podman' ? 'Podman' : 'Docker'} container ${name}`,
      wantedBy: c.autoStart ? ['multi-user.target'] : [],
      wants: image === null ? ['network-online.target'] : [],
      after: [...(podman ? [] : ['docker.service', 'docker.socket']), ...(image === null ? ['network-online.target'] : []), ...deps],
      requires: [...(podman ? [] : ['docker.socket']), ...deps],
      preStart: [
        `${backend} rm -f ${name} || true`,
        ...(image !== null ? [`${backend} load -i ${q(`/etc/${image}`)}`] : []),
        ...(podman ? [`rm -f ${cidFile}`] : []),
      ].join('\n'),
      script: `exec ${run.join(' \\\n  ')}`,
      serviceConfig: {
        // `systemctl reload` is refused rather than guessed: images differ in how they reload.
        TimeoutStartSec: 0,
        TimeoutStopSec: 120,
        Restart: 'always',
        ExecStop: podman ? `/usr/bin/podman stop --ignore --cidfile=${cidFile}` : `-/usr/bin/docker stop ${name}`,
        ExecStopPost: podman ? `/usr/bin/podman rm -f --ignore --cidfile=${cidFile}` : `-/usr/bin/docker rm -f ${name}`,
        ...(podman
          ? {
              Environment: 'PODMAN_SYSTEMD_UNIT=%n',
              Type: 'notify',
              NotifyAccess: 'all',
              // Not /run/<name> as NixOS: a container named `systemd` would take that folder.
              RuntimeDirectory: `podman-${name}`,
            }
          : {}),
      },
    };
  };

  return {
    options: {
      virtualisation: {
        'oci-containers': {
          backend: mkOption({ type: types.enum(['podman', 'docker']), default: 'podman', description: 'The container engine that runs the containers (enabled with them).' }),
          containers: mkOption({ type: types.attrsNamed(containerName, container), default: {}, description: 'OCI (Docker) containers to run as systemd services, by container name.' }),
        },
      },
    },
    config: mkIf(() => Object.keys(cfg.containers).length > 0, mkMerge([
      {
        systemd: {
          get services() {
            return Object.fromEntries(Object.entries(cfg.containers).map(([n, c]) => [c.serviceName, unit(n, c)]));
          },
        },
        environment: {
          get etc() {
            const etc: Record<string, { source: string }> = {};
            for (const c of Object.values(cfg.containers)) {
              const path = imagePath(c);
              if (path !== null) etc[path] = { source: c.imageFile! };
            }
            return etc;
          },
        },
        get assertions() {
          return Object.entries(cfg.containers).flatMap(([n, c]) => {
            const at = `virtualisation.oci-containers.containers.${JSON.stringify(n)}`;
            return [
              ...c.dependsOn.map((d) => ({ assertion: d in cfg.containers, message: `${at}.dependsOn: "${d}" is not a container of virtualisation.oci-containers.containers.` })),
              ...c.environmentFiles.map((f) => ({
                assertion: !f.startsWith('/cairn/store/'),
                message: `${at}.environmentFiles: ${f} is in the world-readable store; an environment file with secrets belongs outside it (e.g. a secret of age.secrets in /run/secrets).`,
              })),
              { assertion: !(c.pull === 'newer' && cfg.backend === 'docker'), message: `${at}.pull: "newer" is podman's; docker knows always, missing and never.` },
            ];
          });
        },
      },
      mkIf(cfg.backend === 'podman', { virtualisation: { podman: { enable: true } } }),
      mkIf(cfg.backend === 'docker', { virtualisation: { docker: { enable: true } } }),
    ])),
  };
};
