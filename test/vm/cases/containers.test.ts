/**
 * Containers (virtualisation.oci-containers) on one machine, both backends, one reboot:
 *   generation 1, podman (the default backend) with dockerCompat: container `web`, loaded from an
 *     image file made here (busybox-static serving HTTP from a volume), serves on its published
 *     port; `systemctl restart` gives a new container, serving again; `docker` is podman.
 *   generation 2 (in the store, switched to): the same container with the docker backend
 *     (dockerCompat off: it conflicts with docker): docker-web serves, restarts as a new container,
 *     and sees what podman's container wrote into the volume.
 *   reboot: the volume kept every start's line; the booted generation's container serves again.
 * One machine and one reboot for both engines: a boot under emulation costs more than all the checks.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DriverContext, Machine } from '../../../src/testing/index.js';
import { keptFixture } from './host.js';

const IMAGE = 'localhost/cairn-web:latest';

/**
 * A docker-archive (what `docker save` writes, which podman and docker both load): one layer with
 * Debian's static busybox and a page, its config, and the manifest naming it `IMAGE`; in `dir`.
 */
function imageArchive(dir: string): void {
  const root = join(dir, 'rootfs');
  for (const d of ['bin', 'www', 'data', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  writeFileSync(join(root, 'www/index.html'), 'the image page\n');
  const tar = (out: string, cwd: string, files: string[]) =>
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', out, '-C', cwd, ...files]);
  const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
  const out = join(dir, 'archive');
  mkdirSync(out);
  tar(join(dir, 'layer.tar'), root, ['.']);
  const diffId = sha(join(dir, 'layer.tar'));
  mkdirSync(join(out, diffId));
  copyFileSync(join(dir, 'layer.tar'), join(out, diffId, 'layer.tar'));
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: { Cmd: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'], WorkingDir: '/', ExposedPorts: { '8080/tcp': {} } },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'cairn test' }],
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  writeFileSync(join(out, configName), config);
  writeFileSync(join(out, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [IMAGE], Layers: [`${diffId}/layer.tar`] }]));
  tar(join(dir, 'image.tar'), out, ['manifest.json', configName, `${diffId}/layer.tar`]);
}

// Kept from run to run: its path is in the system's configuration (configuration.json), so a new
// folder each run would make another system, booted every run.
const imageFile = join(await keptFixture('container-image', imageArchive), 'image.tar');
// A quote and a `$` that must reach the container as written (one quoted word each).
const GREETING = "it's $HOME, cairn";

const generation = (backend: 'podman' | 'docker') => ({
  networking: { hostName: 'containers' },
  system: { stateVersion: '0.1' },
  virtualisation: {
    memorySize: 1536,
    podman: { dockerCompat: backend === 'podman' },
    'oci-containers': {
      backend,
      containers: {
        web: {
          image: IMAGE,
          imageFile,
          ports: ['8080:8080'],
          volumes: ['/var/lib/web:/data'],
          environment: { GREETING },
          // busybox as the container's PID 1 ignores SIGTERM: no need to wait 10 s for the KILL.
          extraOptions: ['--stop-timeout=2'],
          // Each start writes the page (with the container's host name, its id) and a line into the volume.
          cmd: ['/bin/busybox', 'sh', '-c', 'echo "$GREETING from $(/bin/busybox hostname)" > /data/index.html && /bin/busybox hostname >> /data/starts && exec /bin/busybox httpd -f -p 8080 -h /data'],
        },
      },
    },
  },
  environment: { systemPackages: ['curl'] },
  // podman refuses a volume whose host folder is missing.
  systemd: { tmpfiles: { rules: ['d /var/lib/web 0755 root root -'] } },
});

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

export default {
  name: 'containers: podman and docker backends, image files, volumes',
  timeout: 1800,
  nodes: {
    machine: { configuration: generation('podman'), alsoInStore: [generation('docker')] },
  },
  async testScript({ machine }: Record<string, Machine>, { subtest }: DriverContext) {
    const [dockerGeneration] = machine.otherSystems as [string];
    const page = async () => (await machine.succeed('curl -fsS --max-time 10 http://127.0.0.1:8080/')).trim();
    /** Waits for the container's page, then returns it. */
    const serving = async (unit: string) => {
      await machine.waitForUnit(unit);
      await machine.waitUntilSucceeds('curl -fsS --max-time 10 http://127.0.0.1:8080/').catch(async (e: Error) => {
        const journal = await machine.execute(`systemctl status --no-pager ${unit}; journalctl -b --no-pager -n 80 -u ${unit} -u docker.service -u containerd.service`);
        throw new Error(`${e.message}\n--- ${unit} ---\n${journal.stdout}`);
      });
      const p = await page();
      check(p.startsWith(`${GREETING} from `), `${unit} serves ${JSON.stringify(p)}`);
      return p;
    };
    const starts = async () => (await machine.succeed('cat /var/lib/web/starts')).trim().split('\n');
    await machine.start();

    let podmanPage = '';
    await subtest('podman: a container from an image file serves on its published port', async () => {
      podmanPage = await serving('podman-web.service');
      await machine.succeed(`podman image exists ${IMAGE}`);
      check((await starts()).length === 1, `starts: ${await starts()}`);
    });

    await subtest('podman: a restart of the unit is a new container, serving again', async () => {
      await machine.succeed('systemctl restart podman-web.service');
      const again = await serving('podman-web.service');
      check(again !== podmanPage, `the same container after the restart: ${again}`);
      check((await starts()).length === 2, `starts: ${await starts()}`);
      podmanPage = again;
    });

    await subtest('podman: dockerCompat, `docker` is podman', async () => {
      const names = await machine.succeed("docker ps --format '{{.Names}}'");
      check(names.split('\n').includes('web'), `docker ps lists ${JSON.stringify(names)}`);
      const [docker, podman] = (await machine.succeed('readlink -f "$(command -v docker)" /usr/bin/podman')).trim().split('\n');
      check(docker === podman, `docker is ${docker}, podman ${podman}`);
    });

    await subtest('docker: the switch to the docker backend runs the container with dockerd', async () => {
      await machine.succeed(`${dockerGeneration}/bin/switch-to-configuration switch`);
      await machine.fail('systemctl is-active --quiet podman-web.service');
      const p = await serving('docker-web.service');
      const ids = await machine.succeed("docker ps --format '{{.Names}}'");
      check(ids.split('\n').includes('web'), `docker ps lists ${JSON.stringify(ids)}`);
      check((await machine.succeed('docker version --format "{{.Server.Version}}"')).trim() !== '', 'no docker server');
      // The volume holds what podman's containers wrote.
      const s = await starts();
      check(s.length === 3 && p.endsWith(s[2]!), `starts after the switch: ${s}, page ${p}`);
      await machine.succeed('systemctl restart docker-web.service');
      const again = await serving('docker-web.service');
      check(again !== p, `the same docker container after the restart: ${again}`);
    });

    await subtest('the volume persists across a reboot; the booted generation serves again', async () => {
      const before = await starts();
      await machine.reboot();
      const booted = (await machine.succeed('readlink -f /run/booted-system')).trim();
      await serving(booted === dockerGeneration ? 'docker-web.service' : 'podman-web.service');
      const after = await starts();
      check(after.length === before.length + 1 && before.every((l, i) => after[i] === l), `starts before the reboot ${before}, after ${after}`);
    });
  },
};
