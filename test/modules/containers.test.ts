import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalSystem } from '../../src/eval/index.js';
import { etcText, evalConfig, tempDir } from './helpers.js';

const dir = tempDir('containers');
const image = join(dir, 'web.tar');
writeFileSync(image, 'an image archive\n');

/** A configuration with the container `web` (from the image file), of the backend given. */
const web = (container: Record<string, unknown> = {}, backend?: 'podman' | 'docker') => ({
  virtualisation: { 'oci-containers': { ...(backend ? { backend } : {}), containers: { web: { image: 'localhost/web:latest', imageFile: image, ...container } } } },
});

/** The script an `ExecStart=`/`ExecStartPre=` of a unit names, from /etc. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function script(config: any, unit: string, key: string): string {
  const line = etcText(config, `systemd/system/${unit}`).match(new RegExp(`^${key}=(/etc/\\S+)$`, 'm'));
  if (!line) throw new Error(`${unit} has no ${key}= script`);
  return etcText(config, line[1]!.slice('/etc/'.length));
}

/** Runs a generated script with `podman`/`docker` replaced by a recorder; the argument lists of its calls. */
function calls(text: string): string[][] {
  const bin = join(tempDir('bin'), 'bin');
  mkdirSync(bin);
  const log = join(bin, '..', 'calls');
  for (const tool of ['podman', 'docker']) {
    writeFileSync(join(bin, tool), `#!/bin/bash\n{ printf '%s\\0' ${tool} "$@"; printf '\\001'; } >> ${log}\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  const file = join(bin, '..', 'script');
  writeFileSync(file, text.replace(/^rm -f \/run\/.*$/m, ''));
  const r = spawnSync('bash', [file], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`script failed: ${r.stderr}`);
  return spawnSync('cat', [log], { encoding: 'utf8' })
    .stdout.split('\x01')
    .filter((l) => l !== '')
    .map((l) => l.split('\0').slice(0, -1));
}

describe('virtualisation.oci-containers', () => {
  it('runs a container as podman-<name>.service by default (NixOS since 22.05), podman enabled with it', async () => {
    const c = await evalConfig(web({ ports: ['8080:80'], volumes: ['/var/lib/web:/data'] }));
    expect(c.virtualisation['oci-containers'].backend).toBe('podman');
    expect(c.virtualisation.podman.enable).toBe(true);
    expect(c.virtualisation.docker.enable).toBe(false);
    const unit = etcText(c, 'systemd/system/podman-web.service');
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^Environment=PODMAN_SYSTEMD_UNIT=%n$/m);
    expect(unit).toMatch(/^ExecStop=\/usr\/bin\/podman stop --ignore --cidfile=\/run\/podman-web\/ctr-id$/m);
    expect(unit).toMatch(/^ExecStopPost=\/usr\/bin\/podman rm -f --ignore --cidfile=\/run\/podman-web\/ctr-id$/m);
    // Loaded from the file: no network needed.
    expect(unit).not.toMatch(/network-online/);
    expect(c.environment.etc['systemd/system/multi-user.target.wants/podman-web.service']).toBeDefined();
    expect(c.environment.systemPackages.map(String)).toEqual(expect.arrayContaining(['podman', 'netavark', 'crun', 'conmon']));
    expect(etcText(c, 'containers/containers.conf')).toMatch(/\[network\]\nnetwork_backend = "netavark"/);
  });

  it('the start script removes a stale container, loads the image file from the system, then runs it with each argument one word', async () => {
    const c = await evalConfig(
      web({
        ports: ['127.0.0.1:8080:80'],
        volumes: ['/srv/a b:/data:ro'],
        environment: { GREETING: "it's $HOME; `id` \"quoted\"\nsecond line" },
        environmentFiles: ['/run/secrets/web.env'],
        cmd: ['sh', '-c', 'echo $PATH && rm -rf /'],
        entrypoint: '/bin/my app',
        user: 'nobody:nogroup',
        workdir: '/srv/with space',
        extraOptions: ['--label', 'x=$(reboot)'],
      }),
    );
    const pre = calls(script(c, 'podman-web.service', 'ExecStartPre'));
    const file = Object.keys(c.environment.etc).find((k) => k.startsWith('cairn/oci-images/'))!;
    expect(c.environment.etc[file].source).toBe(image);
    expect(pre).toEqual([
      ['podman', 'rm', '-f', 'web'],
      ['podman', 'load', '-i', `/etc/${file}`],
    ]);
    const [run] = calls(script(c, 'podman-web.service', 'ExecStart'));
    expect(run).toEqual([
      'podman', 'run', '--name=web', '--log-driver=journald', '--entrypoint=/bin/my app',
      '--cidfile=/run/podman-web/ctr-id', '--cgroups=enabled', '--sdnotify=conmon', '-d', '--replace',
      '-e', "GREETING=it's $HOME; `id` \"quoted\"\nsecond line",
      '--env-file', '/run/secrets/web.env',
      '-p', '127.0.0.1:8080:80',
      '-u', 'nobody:nogroup',
      '-v', '/srv/a b:/data:ro',
      '-w', '/srv/with space',
      '--rm', '--pull=missing', '--label', 'x=$(reboot)',
      'localhost/web:latest', 'sh', '-c', 'echo $PATH && rm -rf /',
    ]);
  });

  it('a new image file (same path) changes the unit, so a switch restarts the container', async () => {
    const one = script(await evalConfig(web()), 'podman-web.service', 'ExecStartPre');
    writeFileSync(image, 'another image archive\n');
    const two = script(await evalConfig(web()), 'podman-web.service', 'ExecStartPre');
    expect(two).not.toBe(one);
  });

  it('with the docker backend: docker-<name>.service, after the daemon, docker enabled', async () => {
    const c = await evalConfig(web({ ports: ['8080:80'] }, 'docker'));
    expect(c.virtualisation.docker.enable).toBe(true);
    expect(c.virtualisation.podman.enable).toBe(false);
    expect(c.environment.etc['systemd/system/podman-web.service']).toBeUndefined();
    const unit = etcText(c, 'systemd/system/docker-web.service');
    expect(unit).toMatch(/^After=docker\.service docker\.socket$/m);
    expect(unit).toMatch(/^Requires=docker\.socket$/m);
    expect(unit).toMatch(/^ExecStop=-\/usr\/bin\/docker stop web$/m);
    expect(unit).not.toMatch(/Type=notify/);
    const [run] = calls(script(c, 'docker-web.service', 'ExecStart'));
    expect(run).toEqual(['docker', 'run', '--name=web', '--log-driver=journald', '-p', '8080:80', '--rm', '--pull=missing', 'localhost/web:latest']);
  });

  it('dependsOn: the unit requires and starts after the units of those containers', async () => {
    const c = await evalConfig({
      virtualisation: { 'oci-containers': { backend: 'docker', containers: { db: { image: 'db' }, app: { image: 'app', dependsOn: ['db'] } } } },
    });
    const unit = etcText(c, 'systemd/system/docker-app.service');
    expect(unit).toMatch(/^Requires=docker\.socket docker-db\.service$/m);
    expect(unit).toMatch(/^After=docker\.service docker\.socket network-online\.target docker-db\.service$/m);
    await expect(evalConfig({ virtualisation: { 'oci-containers': { containers: { app: { image: 'app', dependsOn: ['db'] } } } } })).rejects.toThrow(
      /virtualisation\.oci-containers\.containers\."app"\.dependsOn: "db" is not a container/,
    );
  });

  it('refuses bad ports, naming the option and the line of the definition', async () => {
    for (const bad of ['70000:80', '8080:0', '8080-8081:80-82', 'http', '1.2.3.4:8080', '8080:80/icmp', '8080:80 -v /:/host']) {
      const file = join(dir, 'ports.yaml');
      writeFileSync(file, `virtualisation:\n  oci-containers:\n    containers:\n      web:\n        image: web\n        ports:\n          - ${JSON.stringify(bad)}\n`);
      await expect(evalSystem([file]), bad).rejects.toThrow(/virtualisation\.oci-containers\.containers\.web\.ports[\s\S]*port mapping[\s\S]*ports\.yaml:7/);
    }
    const c = await evalConfig(web({ ports: ['80', '8080:80/udp', '127.0.0.1::80', '[::1]:8080:80', '1234-1236:1234-1236', '8000-8010:80'] }));
    expect(etcText(c, 'systemd/system/podman-web.service')).toBeTruthy();
  });

  it('refuses container names and images that are not one word, and environment files in the store', async () => {
    await expect(evalConfig({ virtualisation: { 'oci-containers': { containers: { 'web;reboot': { image: 'web' } } } } })).rejects.toThrow(/oci-containers\.containers/);
    await expect(evalConfig(web({ image: '--privileged web' }))).rejects.toThrow(/containers\.web\.image/);
    await expect(evalConfig(web({ environmentFiles: ['/cairn/store/abc-env'] }))).rejects.toThrow(/environmentFiles: \/cairn\/store\/abc-env is in the world-readable store/);
  });
});

describe('virtualisation.podman', () => {
  it('dockerCompat: `docker` is a link to podman; it conflicts with docker', async () => {
    const c = await evalConfig({ virtualisation: { podman: { enable: true, dockerCompat: true } } });
    expect(c.environment.builtPackages).toEqual([expect.objectContaining({ builder: 'cairn:tree', args: { entries: { 'bin/docker': { link: '/usr/bin/podman' } } } })]);
    await expect(evalConfig({ virtualisation: { podman: { enable: true, dockerCompat: true }, docker: { enable: true } } })).rejects.toThrow(/dockerCompat conflicts with virtualisation\.docker\.enable/);
  });

  it('dockerSocket, the default network and autoPrune', async () => {
    const c = await evalConfig({ virtualisation: { podman: { enable: true, dockerSocket: { enable: true }, defaultNetwork: { settings: { dns_enabled: true } }, autoPrune: { enable: true, flags: ['--all'] } } } });
    expect(etcText(c, 'systemd/system/podman.socket.d/overrides.conf')).toMatch(/^SocketGroup=podman\n[\s\S]*^Symlinks=\/run\/docker\.sock$/m);
    expect(c.users.groups.podman).toBeDefined();
    const net = JSON.parse(etcText(c, 'containers/networks/podman.json'));
    expect(net).toMatchObject({ name: 'podman', dns_enabled: true, network_interface: 'podman0' });
    expect(c.environment.systemPackages.map(String)).toContain('aardvark-dns');
    expect(c.networking.firewall.interfaces.podman0.allowedUDPPorts).toEqual([53]);
    expect(etcText(c, 'systemd/system/podman-prune.timer')).toMatch(/^OnCalendar=weekly$/m);
    expect(calls(script(c, 'podman-prune.service', 'ExecStart'))).toEqual([['podman', 'system', 'prune', '-f', '--all']]);
    // podman's own tmpfiles, less the root-only /run/podman that would hide the socket from the group.
    expect(etcText(c, 'tmpfiles.d/podman.conf')).not.toMatch(/\/run\/podman/);
  });
});

describe('virtualisation.containers', () => {
  it('writes registries.conf and storage.conf only when set, over the packaged defaults', async () => {
    const plain = await evalConfig({ virtualisation: { podman: { enable: true } } });
    expect(plain.environment.etc['containers/registries.conf']).toBeUndefined();
    expect(plain.environment.etc['containers/storage.conf']).toBeUndefined();
    const c = await evalConfig({
      virtualisation: { podman: { enable: true }, containers: { registries: { search: ['registry.example'], insecure: ['10.0.0.1:5000'] }, storage: { settings: { storage: { driver: 'overlay' } } } } },
    });
    expect(etcText(c, 'containers/registries.conf')).toBe('unqualified-search-registries = ["registry.example"]\n\n[[registry]]\nlocation = "10.0.0.1:5000"\ninsecure = true\nblocked = false\n');
    expect(etcText(c, 'containers/storage.conf')).toMatch(/^\[storage\]\ndriver = "overlay"/);
    await expect(evalConfig({ virtualisation: { podman: { enable: true }, containers: { registries: { search: ['a b'] } } } })).rejects.toThrow(/virtualisation\.containers\.registries\.search/);
  });
});

describe('virtualisation.docker', () => {
  it('daemon.json from daemon.settings, dockerd reading only it, the docker group', async () => {
    const c = await evalConfig({ virtualisation: { docker: { enable: true, storageDriver: 'overlay2', daemon: { settings: { ipv6: true, 'log-driver': 'json-file' } }, extraOptions: '--debug --label=a$b' } } });
    expect(JSON.parse(etcText(c, 'docker/daemon.json'))).toEqual({
      group: 'docker',
      hosts: ['fd://'],
      containerd: '/run/containerd/containerd.sock',
      ipv6: true,
      'log-driver': 'json-file',
      'storage-driver': 'overlay2',
      'live-restore': true,
    });
    const dropin = etcText(c, 'systemd/system/docker.service.d/overrides.conf');
    expect(dropin).toMatch(/^ExecStart=\nExecStart=\/usr\/sbin\/dockerd --config-file=\/etc\/docker\/daemon\.json --debug "--label=a\$\$b"$/m);
    expect(dropin).toMatch(/^X-Restart-Triggers=/m);
    expect(c.environment.etc['systemd/system/multi-user.target.wants/docker.service']).toBeDefined();
    expect(c.environment.etc['systemd/system/sockets.target.wants/docker.socket']).toBeDefined();
    expect(c.users.groups.docker).toBeDefined();
    // dockerd refuses to start containers on an AppArmor kernel without apparmor_parser.
    expect(c.environment.systemPackages.map(String)).toEqual(expect.arrayContaining(['docker.io', 'containerd', 'runc', 'apparmor']));
    // ...whose tunables include a folder the package ships empty: it must exist in /etc.
    expect(etcText(c, 'apparmor.d/tunables/xdg-user-dirs.d/cairn')).toMatch(/^#/);
    expect(c.boot.kernelModules).toEqual(expect.arrayContaining(['bridge', 'veth', 'br_netfilter']));
  });

  it('enableOnBoot = false leaves dockerd to the socket', async () => {
    const c = await evalConfig({ virtualisation: { docker: { enable: true, enableOnBoot: false } } });
    expect(c.environment.etc['systemd/system/multi-user.target.wants/docker.service']).toBeUndefined();
    expect(c.environment.etc['systemd/system/sockets.target.wants/docker.socket']).toBeDefined();
  });

  it('bookworm\'s docker.io has the `docker` command; later suites add docker-cli', async () => {
    const pkgs = async (m: object) => (await evalConfig(m)).environment.systemPackages.map(String);
    expect(await pkgs({ virtualisation: { docker: { enable: true } }, system: { debian: { release: 'bookworm' } } })).not.toContain('docker-cli');
    expect(await pkgs({ virtualisation: { docker: { enable: true } } })).toContain('docker-cli');
  });
});
