import type { ModuleArgs } from '../config.js';

/** A locale name split into what localedef needs: `de_DE.UTF-8` → de_DE + UTF-8. */
function localeParts(locale: string): { name: string; input: string; charmap: string } {
  const [input, charmap = 'UTF-8'] = locale.split('.');
  return { name: locale, input: input!, charmap };
}

/** glibc's spelling of a locale folder: `de_DE.UTF-8` → `de_DE.utf8` (lower case, no hyphen). */
const folderName = (locale: string): string => locale.replace(/\.(.*)$/, (_m, cs: string) => `.${cs.toLowerCase().replace(/-/g, '')}`);

/**
 * The translation folders a locale reads (gettext's order, without the character set):
 * `sr_RS.UTF-8@latin` → sr_RS@latin, sr@latin, sr_RS, sr; `en_US.UTF-8` → en_US, en; C and POSIX none.
 */
function localeLanguages(locale: string): string[] {
  const m = /^([a-z]{2,3})(_[A-Za-z0-9]+)?(?:\.[^@]*)?(@[A-Za-z0-9]+)?$/.exec(locale);
  if (!m) return [];
  const [, lang, territory = '', modifier = ''] = m;
  const names = modifier ? [`${lang}${territory}${modifier}`, `${lang}${modifier}`] : [];
  return [...new Set([...names, `${lang}${territory}`, lang!])];
}

/**
 * `i18n.defaultLocale`, `i18n.extraLocaleSettings`, `i18n.supportedLocales`.
 *
 * The system's /usr is a read-only store path, so locales cannot be compiled into
 * /usr/lib/locale as Debian's `locale-gen` would. The activation step `locales` compiles the
 * supported locales (other than C.UTF-8, which libc-bin ships) with localedef into
 * /var/lib/cairn/locales when missing (all again after a glibc update), and `LOCPATH` points there
 * for login sessions (pam_env) and services (systemd's DefaultEnvironment).
 *
 * The packages' translations are their `lang-<language>` outputs: a system holds those of the
 * languages of its locales only (environment.extraOutputsToInstall).
 */
export default ({ lib, config }: ModuleArgs) => {
  const { mkOption, mkIf, types } = lib;
  const cfg = config.i18n;
  const localeName = types.strMatching('[A-Za-z]+(_[A-Za-z]+)?(\\.[A-Za-z0-9-]+)?(@[a-z]+)?');
  const LOCPATH = '/var/lib/cairn/locales';
  const compiled = (): string[] => cfg.supportedLocales.filter((l) => !/^C\.(UTF-8|utf8)$/.test(l));
  const languages = (): string[] =>
    [...new Set([cfg.defaultLocale, ...Object.values(cfg.extraLocaleSettings), ...cfg.supportedLocales].flatMap(localeLanguages))].sort();
  // Unlike NixOS, whose packages carry every translation: on Debian they are most of a minimal closure.
  const translations =
    "The system's packages hold translations (usr/share/locale/<language>, their `lang-<language>` outputs) only for the languages of " +
    'i18n.defaultLocale, i18n.extraLocaleSettings and i18n.supportedLocales (en_US.UTF-8: `en_US` and `en`; C.UTF-8: none), unlike NixOS.';
  return {
    options: {
      i18n: {
        defaultLocale: mkOption({ type: localeName, default: 'C.UTF-8', example: 'en_GB.UTF-8', description: `The locale of the system (\`LANG\`). ${translations}` }),
        extraLocaleSettings: mkOption({ type: types.attrsNamed(types.envName, localeName), default: {}, example: { LC_TIME: 'en_GB.UTF-8' }, description: `More \`LC_*\` variables. ${translations}` }),
        supportedLocales: mkOption({
          type: types.listOf(localeName),
          get default() {
            return [...new Set([cfg.defaultLocale, ...Object.values(cfg.extraLocaleSettings)])];
          },
          defaultText: 'the default locale and those of extraLocaleSettings',
          description: `Locales compiled at activation (C.UTF-8 needs nothing). ${translations}`,
        }),
      },
    },
    config: {
      environment: {
        get extraOutputsToInstall() {
          return languages().map((l) => `lang-${l}`);
        },
        etc: {
          'default/locale': {
            get text() {
              const vars = { LANG: cfg.defaultLocale, ...cfg.extraLocaleSettings };
              return lib.renderTemplate('i18n/locale.locale', { vars: Object.entries(vars).map(([k, v]) => ({ k, v })) });
            },
          },
        },
        variables: mkIf(() => compiled().length > 0, { LOCPATH }),
        systemPackages: mkIf(() => compiled().length > 0, ['locales']),
      },
      systemd: {
        // Services get LOCPATH too, or they would fall back to the C locale.
        managerEnvironment: mkIf(() => compiled().length > 0, { LOCPATH }),
      },
      system: {
        activationScripts: mkIf(() => compiled().length > 0, {
          locales: {
            get text() {
              // Every value reaches root's shell as a quoted word.
              const q = lib.shellQuote;
              const locales = compiled().map((l) => {
                const p = localeParts(l);
                return { name: q(p.name), input: q(p.input), charmap: q(p.charmap), folder: q(`${LOCPATH}/${folderName(l)}`), ctype: q(`${LOCPATH}/${folderName(l)}/LC_CTYPE`) };
              });
              return lib.renderTemplate('i18n/locale.locales.sh', { dir: q(LOCPATH), locales });
            },
          },
        }),
      },
    },
  };
};
