/** The environment is read once into a validated, frozen config; a bad value names the variable and the rule. */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, replicaIdOf } from '../src/config.js';
import { runCli } from './helpers/cli.js';

describe('config', () => {
  it('parses and freezes; empty values count as unset', () => {
    const c = parseConfig({
      ITGUARD_PORT: '8080',
      ITGUARD_ALLOWED_HOSTS: 'a.example, b.example',
      ITGUARD_PUBLIC_URL: 'https://it.example/',
      ITGUARD_AUDIT_KEY: '',
    });
    expect(c).toMatchObject({
      port: 8080,
      allowedHosts: ['a.example', 'b.example'],
      publicUrl: 'https://it.example',
      auditKey: undefined,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.allowedHosts)).toBe(true);
  });

  it('refuses bad values naming the variable', () => {
    expect(() => parseConfig({ ITGUARD_PORT: '70000' })).toThrow(ConfigError);
    expect(() => parseConfig({ ITGUARD_PORT: '70000' })).toThrow(/ITGUARD_PORT/);
    expect(() => parseConfig({ ITGUARD_FAILPOINT: 'somewhere' })).toThrow(
      /ITGUARD_FAILPOINT: must be one of "before-effect", "after-effect"/,
    );
    expect(() => parseConfig({ ITGUARD_AUDIT_KEY: 'short' })).toThrow(
      /ITGUARD_AUDIT_KEY: must be at least 16 characters/,
    );
    expect(() => parseConfig({ ITGUARD_PUBLIC_URL: 'ftp://x' })).toThrow(/ITGUARD_PUBLIC_URL/);
  });

  it('ITGUARD_REPLICA_ID: as given, else the host name sanitised; other characters are refused naming it', () => {
    expect(parseConfig({ ITGUARD_REPLICA_ID: 'r2' }, () => 'ignored').replicaId).toBe('r2');
    expect(parseConfig({}, () => 'Web_01.corp.example').replicaId).toBe('web-01-corp-example');
    expect(parseConfig({ ITGUARD_REPLICA_ID: '' }, () => 'h1').replicaId).toBe('h1');
    expect(replicaIdOf('..__..')).toBe('itguard');
    expect(replicaIdOf(`-${'a'.repeat(80)}`)).toBe('a'.repeat(62));
    for (const bad of ['R2', 'r2.eu', 'r 2', 'r_2', 'a'.repeat(64)])
      expect(() => parseConfig({ ITGUARD_REPLICA_ID: bad }), bad).toThrow(
        /ITGUARD_REPLICA_ID: expected 1-63 characters a-z, 0-9 and "-"/,
      );
  });

  it('the CLI exits 2 with one line for a bad variable', () => {
    const r = runCli(['status', '--db', ':memory:'], { ITGUARD_LOG_LEVEL: 'loud' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^itguard: invalid environment: ITGUARD_LOG_LEVEL: /),
    ]);
  });
});
