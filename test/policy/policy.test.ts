import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';
import { loadPolicy, MAX_YAML_ALIASES, parsePolicy, PolicyError } from '../../src/policy/load.js';
import { tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';

const problems = (yaml: string): string[] => {
  try {
    parsePolicy(yaml);
  } catch (e) {
    if (e instanceof PolicyError) return e.problems;
    throw e;
  }
  return [];
};

describe('policy', () => {
  it('parses the demo policy into frozen camelCase', () => {
    const p = parsePolicy(DEMO_POLICY_YAML);
    expect(p.stdioPrincipal).toBe('helpdesk-agent');
    expect(p.tools.ticket_create.dedupeWindowMs).toBe(15 * 60_000);
    expect(p.tools.password_reset.caps[1]).toMatchObject({
      name: 'resets-per-user',
      per: 'target',
      limit: 2,
      window: 'day',
    });
    expect(p.tools.software_install.caps[1]!.measure).toBe('cost_usd');
    expect(p.tools.kb_search.tier).toBeUndefined();
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.tools.ticket_create.caps)).toBe(true);
  });

  it('names the path and the rule of a bad value', () => {
    const bad = demoPolicy()
      .cap('password_reset', { name: 'resets-per-user', window: 'day', per: 'target', limit: -1 })
      .yaml();
    expect(problems(bad)).toContain('tools.password_reset.caps[1].limit: expected a positive number');
    const frac = demoPolicy()
      .cap('ticket_create', { name: 'tickets-per-day', window: 'day', limit: 2.5, alarm_at: 3000 })
      .yaml();
    expect(problems(frac)).toContain('tools.ticket_create.caps[0].limit: expected a positive integer');
  });

  it('refuses unknown keys, unknown tools and unknown scopes', () => {
    expect(problems(DEMO_POLICY_YAML.replace('demo: true', 'demo: true\ncolour: blue'))).toContain(
      'colour: unknown key',
    );
    expect(problems(DEMO_POLICY_YAML.replace('    tier: auto\n', '    tier: auto\n    teir: mfa\n'))).toContain(
      'tools.ticket_create.teir: unknown key',
    );
    expect(problems(DEMO_POLICY_YAML.replace('tools:\n', 'tools:\n  rm_rf: { tier: auto }\n')).join()).toMatch(/tools/);
    expect(problems(DEMO_POLICY_YAML.replace('kb:read, tickets:read]', 'kb:read, root]')).join()).toMatch(
      /principals\.kb-reader\.scopes\[1\]: must be one of/,
    );
  });

  it('checks cross-field rules: stdio_principal, alarm_at, timezone, dedupe_window', () => {
    expect(problems(DEMO_POLICY_YAML.replace('stdio_principal: helpdesk-agent', 'stdio_principal: ghost'))).toContain(
      'stdio_principal: must name a principal under principals',
    );
    expect(problems(DEMO_POLICY_YAML.replace('limit: 200, alarm_at: 50', 'limit: 200, alarm_at: 500'))).toContain(
      'tools.password_reset.caps[0].alarm_at: must not exceed limit',
    );
    expect(problems(DEMO_POLICY_YAML.replace('timezone: UTC', 'timezone: Mars/Olympus'))[0]).toMatch(
      /^timezone: expected an IANA time zone/,
    );
    expect(problems(DEMO_POLICY_YAML.replace('dedupe_window: 15m', 'dedupe_window: soon'))[0]).toMatch(
      /dedupe_window: expected a duration/,
    );
  });

  it('refuses cap rules that could never apply: duplicate names, keys or measures the tool does not have', () => {
    const dup = demoPolicy()
      .caps('ticket_create', [
        { name: 'tickets-per-day', window: 'day', limit: 5000, alarm_at: 3000 },
        { name: 'tickets-per-day', window: 'hour', per: 'requester', limit: 5 },
      ])
      .yaml();
    expect(problems(dup)).toContain('tools.ticket_create.caps[1].name: duplicate cap name "tickets-per-day"');
    const per = demoPolicy()
      .cap('ticket_create', { name: 'tickets-per-requester', window: 'hour', per: 'target', limit: 5 })
      .yaml();
    expect(problems(per)[0]).toMatch(/^tools\.ticket_create\.caps\[1\]\.per: ticket_create has no target/);
    const cost = demoPolicy()
      .cap('password_reset', { name: 'resets-per-day', window: 'day', measure: 'cost_usd', limit: 200 })
      .yaml();
    expect(problems(cost)[0]).toMatch(/password_reset has no cost/);
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    expect(problems('version: 1\nversion: 1\n')[0]).toMatch(/^YAML:/);
    expect(problems('tools: [\n')[0]).toMatch(/^YAML:/);
  });

  it('loads a file given by flag, and falls back to the built-in demo policy', () => {
    const { dir, cleanup } = tempDir();
    try {
      const f = join(dir, 'p.yaml');
      writeFileSync(f, demoPolicy().set('timezone', 'Europe/Berlin').yaml());
      expect(loadPolicy(f).policy.timezone).toBe('Europe/Berlin');
      const saved = process.env.ITGUARD_POLICY;
      delete process.env.ITGUARD_POLICY;
      expect(loadPolicy().source).toBe('built-in demo policy');
      if (saved !== undefined) process.env.ITGUARD_POLICY = saved;
      expect(() => loadPolicy(join(dir, 'missing.yaml'))).toThrow(/cannot read/);
    } finally {
      cleanup();
    }
  });

  it('refuses principal names every JavaScript object has, and looks principals up without a prototype', () => {
    const withPrincipal = (n: string) =>
      DEMO_POLICY_YAML.replace('principals:\n', `principals:\n  ${n}: { scopes: [kb:read] }\n`);
    expect(problems(withPrincipal('constructor'))).toEqual([
      'principals.constructor: "constructor" is a name every JavaScript object already has; choose another principal name',
    ]);
    expect(problems(withPrincipal('__proto__'))).toEqual([
      'principals.__proto__: "__proto__" is a name every JavaScript object already has; choose another principal name',
    ]);
    expect(problems(withPrincipal('toString'))[0]).toMatch(
      /^principals\.toString: "toString" is a name every JavaScript object/,
    );
    expect(problems(withPrincipal('Bad'))).toEqual(['principals.Bad: expected a lowercase name of [a-z0-9._-]']);
    // `in` finds Object.prototype.constructor: stdio_principal must name a principal the file has.
    expect(
      problems(DEMO_POLICY_YAML.replace('stdio_principal: helpdesk-agent', 'stdio_principal: constructor')),
    ).toContain('stdio_principal: must name a principal under principals');
    expect(problems(DEMO_POLICY_YAML.replace('tools:\n', 'tools:\n  __proto__: { tier: auto }\n'))[0]).toMatch(
      /^tools\.__proto__: "__proto__" is a name/,
    );

    const p = parsePolicy(DEMO_POLICY_YAML);
    const principals = p.principals as Record<string, unknown>;
    expect(Object.getPrototypeOf(p.principals)).toBeNull();
    expect(principals['constructor']).toBeUndefined();
    expect(principals['toString']).toBeUndefined();
    expect(principals['__proto__']).toBeUndefined();
    expect((p.tools as Record<string, unknown>)['constructor']).toBeUndefined();
    expect(p.principals['kb-reader']).toEqual({ scopes: ['kb:read', 'tickets:read'] });
    expect(Object.isFrozen(p.principals)).toBe(true);
  });

  it('refuses values that would break at runtime: timers, dates, durations, counts, rule lists', () => {
    const tool = (extra: string) =>
      DEMO_POLICY_YAML.replace('    dedupe_window: 15m\n', `    dedupe_window: 15m\n${extra}\n`);
    // AbortSignal.timeout past 2^31-1 ms fires after 1 ms: 30d would time out every call at once.
    expect(problems(tool('    timeout: 30d'))).toEqual([
      'tools.ticket_create.timeout: must be at most 10m (a tool call running longer is hung; timers cannot exceed ~24.8 days)',
    ]);
    expect(problems(tool('    timeout: 11m'))[0]).toMatch(/timeout: must be at most 10m/);
    expect(problems(tool('    timeout: 0s'))).toEqual(['tools.ticket_create.timeout: must be at least 1s']);
    expect(parsePolicy(tool('    timeout: 10m')).tools.ticket_create.timeoutMs).toBe(600_000);
    expect(problems(DEMO_POLICY_YAML.replace('dedupe_window: 15m', 'dedupe_window: 999999999d'))[0]).toMatch(
      /^tools\.ticket_create\.dedupe_window: must be at most 30d/,
    );
    expect(problems(DEMO_POLICY_YAML.replace('dedupe_window: 15m', `dedupe_window: ${'9'.repeat(400)}d`))[0]).toMatch(
      /dedupe_window: must be at most 30d/,
    );
    // expire_hours * 3600e3 past 8.64e15 ms is an Invalid Date, which throws on toISOString.
    expect(problems(DEMO_POLICY_YAML.replace('expire_hours: 24', 'expire_hours: 3000000000'))).toEqual([
      'approvals.expire_hours: must be at most 8760 (a year)',
    ]);
    expect(parsePolicy(DEMO_POLICY_YAML.replace('expire_hours: 24', 'expire_hours: 8760')).approvals.expireHours).toBe(
      8760,
    );
    expect(problems(DEMO_POLICY_YAML.replace('max_minutes: 30', 'max_minutes: 100000'))).toEqual([
      'task.max_minutes: must be at most 1440 (a day)',
    ]);
    expect(problems(DEMO_POLICY_YAML.replace('max_calls: 40', 'max_calls: 9007199254740993'))[0]).toMatch(
      /^task\.max_calls: /,
    );
    expect(problems(DEMO_POLICY_YAML.replace('max_calls: 40', 'max_calls: 2000000000'))).toEqual([
      'task.max_calls: must be at most 1000000000 (per task)',
    ]);
    expect(problems(DEMO_POLICY_YAML.replace('limit: 5000', 'limit: 1e15'))).toContain(
      'tools.ticket_create.caps[0].limit: must be at most 1e+12 (a limit past that is a typo)',
    );
    expect(problems(DEMO_POLICY_YAML.replace('limit: 5000', 'limit: .inf'))[0]).toMatch(
      /tools\.ticket_create\.caps\[0\]\.limit/,
    );

    const manyCaps = (n: number) =>
      demoPolicy()
        .caps(
          'ticket_create',
          Array.from({ length: n }, (_, i) => ({ name: `c${i}`, window: 'day' as const, limit: 10 })),
        )
        .yaml();
    expect(problems(manyCaps(33))).toEqual(['tools.ticket_create.caps: must have at most 32 items']);
    expect(parsePolicy(manyCaps(32)).tools.ticket_create.caps).toHaveLength(32);
    const budgets = (n: number) =>
      demoPolicy()
        .budgets(Array.from({ length: n }, (_, i) => ({ name: `b${i}`, window: 'hour' as const, limit: 10 })))
        .yaml();
    expect(problems(budgets(65))).toEqual(['budgets: must have at most 64 items']);
  });

  it('a YAML alias bomb is one line naming the limit, not a hang or a stack trace', () => {
    let bomb = 'version: 1\nlol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
    for (let i = 1; i <= 9; i++)
      bomb += `lol${i}: &l${i} [${Array(9)
        .fill(`*l${i - 1}`)
        .join(', ')}]\n`;
    let error: unknown;
    try {
      parsePolicy(bomb, 'bomb.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).message).toBe(
      `invalid policy bomb.yaml: YAML: aliases expand past the limit of ${MAX_YAML_ALIASES} (a "billion laughs" document); write the values out instead`,
    );
    // An anchor used a few times is fine.
    const reuse = DEMO_POLICY_YAML.replace(
      'deny_target_groups: [admins, service-accounts]',
      'deny_target_groups: &g [admins, service-accounts]',
    ).replace('    self_service_tier: confirm\n', '    self_service_tier: confirm\n    deny_target_groups: *g\n');
    expect(parsePolicy(reuse).tools.software_install.denyTargetGroups).toEqual(['admins', 'service-accounts']);
  });
});
