/**
 * The build's pure parts: pam-auth-update's output (compared with what the real tool wrote on
 * this Debian machine, when it is one) and the ordering of activation snippets.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { activateScript, orderSnippets } from '../../src/build/activate.js';
import { parsePamProfile, pamCommonFiles } from '../../src/build/pam.js';

const PROFILES = '/usr/share/pam-configs';
const onDebian = existsSync(PROFILES) && existsSync('/etc/pam.d/common-auth');

describe('PAM common files', () => {
  it.runIf(onDebian)('equal what pam-auth-update wrote on this machine', () => {
    const profiles = readdirSync(PROFILES).map((f) => parsePamProfile(f, readFileSync(`${PROFILES}/${f}`, 'utf8')));
    const rules = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    for (const [file, text] of Object.entries(pamCommonFiles(profiles))) {
      expect(rules(text), file).toEqual(rules(readFileSync(`/etc/pam.d/${file}`, 'utf8')));
    }
  });

  it('chains primary modules past pam_deny, uses -Initial first, leaves out interactive-only modules when asked', () => {
    const a = parsePamProfile('a', 'Name: A\nDefault: yes\nPriority: 300\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_a.so try_first_pass\nAuth-Initial:\n\t[success=end default=ignore]\tpam_a.so\n');
    const b = parsePamProfile('b', 'Name: B\nDefault: yes\nPriority: 100\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_b.so use_first_pass\n');
    const off = parsePamProfile('c', 'Name: C\nDefault: no\nPriority: 500\nAuth-Type: Primary\nAuth:\n\trequired\tpam_c.so\n');
    const s = parsePamProfile('s', 'Name: S\nDefault: yes\nPriority: 0\nSession-Interactive-Only: yes\nSession-Type: Additional\nSession:\n\toptional\tpam_s.so\n');
    const files = pamCommonFiles([b, off, a, s]);
    const auth = files['common-auth']!.split('\n').filter((l) => l.startsWith('auth'));
    expect(auth).toEqual([
      'auth\t[success=2 default=ignore]\tpam_a.so ',
      'auth\t[success=1 default=ignore]\tpam_b.so use_first_pass',
      'auth\trequisite\t\t\tpam_deny.so',
      'auth\trequired\t\t\tpam_permit.so',
    ]);
    expect(files['common-session']).toContain('session\toptional\tpam_s.so ');
    expect(files['common-session-noninteractive']).not.toContain('pam_s.so');
  });
});

describe('activation snippets', () => {
  it('run after their dependencies, otherwise by name', () => {
    const order = orderSnippets({ c: { text: 'c', deps: ['b'] }, b: 'b', a: { text: 'a', deps: ['c'] }, d: 'd' }).map((s) => s.name);
    expect(order).toEqual(['b', 'c', 'a', 'd']);
  });

  it('name an unknown dependency and a cycle', () => {
    expect(() => orderSnippets({ a: { text: '', deps: ['nope'] } })).toThrow(/system\.activationScripts\.a\.deps: there is no snippet named 'nope'/);
    expect(() => orderSnippets({ a: { text: '', deps: ['b'] }, b: { text: '', deps: ['a'] } })).toThrow(/cycle: a -> b -> a/);
  });

  it("make systemd-tmpfiles' volatile files on a switch without removing any (Debian's `D /tmp` would empty /tmp)", () => {
    const script = activateScript({ bash: '/bin/bash', sw: '/cairn/store/x-sw', etc: '/cairn/store/x-etc', users: '/cairn/store/x-users', mutableUsers: true }, {});
    const calls = script.split('\n').filter((l) => /^\s*systemd-tmpfiles /.test(l));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(/^\s*systemd-tmpfiles --create --exclude-prefix=\/dev /);
    expect(calls[0]).not.toMatch(/--remove|--boot/);
  });
});
