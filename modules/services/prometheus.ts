import type { ModuleArgs } from '../config.js';

/** Where the generated files are on the running system. */
const CONFIG = '/etc/prometheus/prometheus.yml';
const RULES = '/etc/prometheus/rules.yml';

/** Keys whose value is a secret: in prometheus.yml it would be in the world-readable store. */
const SECRET_KEYS: Record<string, string> = { password: 'password_file', bearer_token: 'bearer_token_file', credentials: 'credentials_file', client_secret: 'client_secret_file' };

/** `v` without null values, deep (NixOS's `filterValidPrometheus`): unset options stay out of the file. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, withoutNulls(x)]));
  return v;
}

/** The paths (below `at`) of secrets written in a value, with the `…_file` key to use instead. */
function secretsIn(v: unknown, at: string): { path: string; instead: string }[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => secretsIn(x, `${at}[${i}]`));
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v).flatMap(([k, x]) => [...(k in SECRET_KEYS && x !== null && x !== '' ? [{ path: `${at}.${k}`, instead: SECRET_KEYS[k]! }] : []), ...secretsIn(x, `${at}.${k}`)]);
}

/**
 * `services.prometheus`: the Prometheus server (Debian's package), with NixOS's options.
 * prometheus.yml is generated from `globalConfig`, `scrapeConfigs`, `rules` and `ruleFiles`, checked
 * by `promtool check config` at build time (`checkConfig`), and applied by a reload (SIGHUP); its
 * data is in /var/lib/<stateDir> (`prometheus2`, as NixOS), run as the `prometheus` account.
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, mkMerge, types } = lib;
  const cfg = config.services.prometheus;
  const yaml = lib.formats.yaml();
  const freeform = types.attrsOf(yaml.type);
  const line = types.singleLineStr;
  // A duration as Prometheus writes them (`15s`, `1m`, `1h30m`, `30d`).
  const duration = types.strMatching('([0-9]+(ms|s|m|h|d|w|y))+');

  const globalConfig = types.submodule({
    freeformType: freeform,
    options: {
      scrape_interval: mkOption({ type: types.nullOr(duration), default: null, example: '15s', description: 'How often targets are scraped by default (Prometheus: 1m).' }),
      scrape_timeout: mkOption({ type: types.nullOr(duration), default: null, description: 'How long a scrape may take by default (Prometheus: 10s).' }),
      evaluation_interval: mkOption({ type: types.nullOr(duration), default: null, description: 'How often rules are evaluated (Prometheus: 1m).' }),
      external_labels: mkOption({ type: types.nullOr(types.attrsOf(line)), default: null, description: 'Labels added to series and alerts sent to other systems (federation, remote storage, Alertmanager).' }),
      query_log_file: mkOption({ type: types.nullOr(types.path), default: null, description: 'A file PromQL queries are logged to.' }),
    },
  });
  const staticConfig = types.submodule({
    options: {
      targets: mkOption({ type: types.listOf(line), example: ['127.0.0.1:9100'], description: 'The targets (`host:port`) of the group.' }),
      labels: mkOption({ type: types.attrsOf(line), default: {}, description: 'Labels of every series scraped from them.' }),
    },
  });
  const scrapeConfig = types.submodule({
    freeformType: freeform,
    options: {
      job_name: mkOption({ type: line, description: 'The job: the `job` label of what is scraped.' }),
      scrape_interval: mkOption({ type: types.nullOr(duration), default: null, description: 'How often this job scrapes (default: `globalConfig.scrape_interval`).' }),
      scrape_timeout: mkOption({ type: types.nullOr(duration), default: null, description: 'How long a scrape may take (default: `globalConfig.scrape_timeout`).' }),
      metrics_path: mkOption({ type: types.nullOr(line), default: null, example: '/metrics', description: 'The HTTP path of the metrics (Prometheus: /metrics).' }),
      honor_labels: mkOption({ type: types.nullOr(types.bool), default: null, description: "Whether the target's own labels win over Prometheus's (`job`, `instance`) when they clash." }),
      scheme: mkOption({ type: types.nullOr(types.enum(['http', 'https'])), default: null, description: 'The URL scheme of the scrapes (Prometheus: http).' }),
      static_configs: mkOption({ type: types.nullOr(types.listOf(staticConfig)), default: null, description: 'Targets listed by hand.' }),
    },
  });

  const ruleFiles = (rulesPath: string): string[] => [...cfg.ruleFiles, ...(cfg.rules.length > 0 ? [rulesPath] : [])];
  /** prometheus.yml's text; the check's copy names its own rules file. */
  const promYml = (rulesPath = RULES, userRuleFiles = true): string =>
    yaml.generate(
      'services.prometheus',
      withoutNulls({
        global: cfg.globalConfig,
        rule_files: userRuleFiles ? ruleFiles(rulesPath) : cfg.rules.length > 0 ? [rulesPath] : [],
        scrape_configs: cfg.scrapeConfigs,
      }),
    );
  const rulesText = (): string => cfg.rules.join('\n') + '\n';

  const args = (): string[] => [
    `--config.file=${CONFIG}`,
    `--storage.tsdb.path=/var/lib/${cfg.stateDir}/data/`,
    `--web.listen-address=${cfg.listenAddress}:${cfg.port}`,
    ...(cfg.retentionTime !== null ? [`--storage.tsdb.retention.time=${cfg.retentionTime}`] : []),
    ...(cfg.webExternalUrl !== null ? [`--web.external-url=${cfg.webExternalUrl}`] : []),
    ...cfg.extraFlags,
  ];

  return {
    options: {
      services: {
        prometheus: {
          enable: lib.mkEnableOption('the Prometheus monitoring server'),
          port: mkOption({ type: types.port, default: 9090, description: 'The port of the web interface and API.' }),
          listenAddress: mkOption({ type: types.strMatching('[^\\s\\x00-\\x1f\\x7f]*'), default: '0.0.0.0', example: '[::1]', description: 'The address the web interface and API listen on (an IPv6 one in brackets).' }),
          stateDir: mkOption({
            // Relative and below /var/lib: no `.` or `..` component.
            type: types.strMatching('(?!\\.\\.?(/|$))[A-Za-z0-9_.-]+(/(?!\\.\\.?(/|$))[A-Za-z0-9_.-]+)*'),
            default: 'prometheus2',
            description: 'The folder below /var/lib the data is kept in (`StateDirectory=`; the TSDB in its `data`).',
          }),
          webExternalUrl: mkOption({ type: types.nullOr(line), default: null, example: 'https://example.org/prometheus/', description: 'The URL Prometheus is reached at, e.g. behind a reverse proxy (`--web.external-url`).' }),
          extraFlags: mkOption({ type: types.listOf(line), default: [], example: ['--storage.tsdb.retention.size=10GB'], description: 'More command line arguments of prometheus, each one argument.' }),
          retentionTime: mkOption({ type: types.nullOr(duration), default: null, example: '15d', description: 'How long samples are kept (`--storage.tsdb.retention.time`); null: Prometheus\'s 15d.' }),
          checkConfig: mkOption({
            type: types.either(types.bool, types.enum(['syntax-only'])),
            default: true,
            example: 'syntax-only',
            description:
              'Whether `cairn build` checks prometheus.yml with `promtool check config` (and the `rules` with it). `syntax-only` skips the files it names (certificates, password files), which only the running system has; ' +
              'the files of `ruleFiles` are never read at build time.',
          }),
          globalConfig: mkOption({ type: globalConfig, default: {}, description: 'The `global` section of prometheus.yml: defaults of the other sections. Unset (null) settings are left out.' }),
          scrapeConfigs: mkOption({
            type: types.listOf(scrapeConfig),
            default: [],
            example: [{ job_name: 'node', static_configs: [{ targets: ['127.0.0.1:9100'] }] }],
            description:
              'The `scrape_configs` of prometheus.yml: the jobs and their targets. Settings without an option here are written as given (Prometheus\'s names); null ones are left out. ' +
              'Secrets (`password`, `bearer_token`, …) are refused, since the file is in the world-readable store: use `password_file`, `bearer_token_file`.',
          }),
          rules: mkOption({
            type: types.listOf(types.str),
            default: [],
            example: ['groups:\n  - name: up\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 5m\n'],
            description: 'Alerting and recording rules (YAML text, joined by line breaks into /etc/prometheus/rules.yml, which prometheus.yml names).',
          }),
          ruleFiles: mkOption({ type: types.listOf(types.path), default: [], description: 'More rule files (paths or globs on the running system) prometheus.yml names.' }),
          configText: mkOption({ type: types.str, readOnly: true, get default() { return promYml(); }, defaultText: 'rendered from the options above', description: 'The generated /etc/prometheus/prometheus.yml (read-only).' }),
        },
      },
    },
    config: mkIf(cfg.enable, mkMerge([
      // A changed prometheus.yml or rules file is applied by a reload: no restart, no gap in the data.
      lib.systemd.configuredService('prometheus', {
        packages: ['prometheus'],
        configFile: 'prometheus/prometheus.yml',
        text: () => cfg.configText,
        onChange: 'reload',
        unit: {
          description: 'Prometheus monitoring server',
          wantedBy: ['multi-user.target'],
          after: ['network.target'],
          get script() {
            return `exec /usr/bin/prometheus ${args().map(lib.shellQuote).join(' ')}`;
          },
          serviceConfig: {
            User: 'prometheus',
            Group: 'prometheus',
            ExecReload: '/bin/kill -HUP $MAINPID',
            Restart: 'always',
            RuntimeDirectory: 'prometheus',
            RuntimeDirectoryMode: '0700',
            WorkingDirectory: `/var/lib/${cfg.stateDir}`,
            StateDirectory: cfg.stateDir,
            StateDirectoryMode: '0700',
            // Debian's unit's hardening.
            CapabilityBoundingSet: '',
            NoNewPrivileges: true,
            PrivateTmp: true,
            PrivateDevices: true,
            ProtectHome: true,
            ProtectSystem: 'full',
            ProtectKernelModules: true,
            ProtectKernelTunables: true,
            ProtectControlGroups: true,
            LimitNOFILE: 32768,
            TimeoutStopSec: '20s',
          },
        },
      }),
      lib.systemd.serviceAccount('prometheus', { description: 'Prometheus monitoring server', home: `/var/lib/${cfg.stateDir}` }),
      mkIf(() => cfg.rules.length > 0, {
        environment: { etc: { 'prometheus/rules.yml': { get text() { return rulesText(); } } } },
        // Changed rules are read again by the same reload.
        systemd: { services: { prometheus: { get reloadTriggers() { return [lib.digest(rulesText())]; } } } },
      }),
      mkIf(() => cfg.checkConfig !== false, {
        system: {
          checks: {
            'services.prometheus': {
              package: 'prometheus',
              program: 'usr/bin/promtool',
              get args() {
                return ['check', 'config', ...(cfg.checkConfig === 'syntax-only' ? ['--syntax-only'] : []), '@dir@/prometheus.yml'];
              },
              files: {
                get 'prometheus.yml'() {
                  return promYml('@dir@/rules.yml', false);
                },
                get 'rules.yml'() {
                  return rulesText();
                },
              },
              options: ['services.prometheus.rules', 'services.prometheus.scrapeConfigs', 'services.prometheus.globalConfig'],
            },
          },
        },
      }),
      {
        get assertions() {
          const found = [...secretsIn(cfg.globalConfig, 'services.prometheus.globalConfig'), ...secretsIn(cfg.scrapeConfigs, 'services.prometheus.scrapeConfigs')];
          return found.map((s) => ({
            assertion: false,
            message: `${s.path}: a secret in prometheus.yml would be in the world-readable store; write it to a file outside the store (e.g. an age secret in /run/secrets) and name that file in ${s.instead}.`,
          }));
        },
      },
    ])),
  };
};
