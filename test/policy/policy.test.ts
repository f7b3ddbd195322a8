import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';
import { loadPolicy, parsePolicy, PolicyError } from '../../src/policy/load.js';
import { tempDir } from '../helpers/harness.js';

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
    expect(p.tools.password_reset.caps[1]).toMatchObject({ name: 'resets-per-user', per: 'target', limit: 2, window: 'day' });
    expect(p.tools.software_install.caps[1]!.measure).toBe('cost_usd');
    expect(p.tools.kb_search.tier).toBeUndefined();
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.tools.ticket_create.caps)).toBe(true);
  });

  it('names the path and the rule of a bad value', () => {
    const bad = DEMO_POLICY_YAML.replace('{ name: resets-per-user, window: day, per: target, limit: 2 }', '{ name: resets-per-user, window: day, per: target, limit: -1 }');
    expect(problems(bad)).toContain('tools.password_reset.caps[1].limit: expected a positive number');
    const frac = DEMO_POLICY_YAML.replace('limit: 5000', 'limit: 2.5');
    expect(problems(frac)).toContain('tools.ticket_create.caps[0].limit: expected a positive integer');
  });

  it('refuses unknown keys, unknown tools and unknown scopes', () => {
    expect(problems(DEMO_POLICY_YAML.replace('demo: true', 'demo: true\ncolour: blue'))).toContain('colour: unknown key');
    expect(problems(DEMO_POLICY_YAML.replace('    tier: auto\n', '    tier: auto\n    teir: mfa\n'))).toContain('tools.ticket_create.teir: unknown key');
    expect(problems(DEMO_POLICY_YAML.replace('tools:\n', 'tools:\n  rm_rf: { tier: auto }\n')).join()).toMatch(/tools/);
    expect(problems(DEMO_POLICY_YAML.replace('kb:read, tickets:read]', 'kb:read, root]')).join()).toMatch(/principals\.kb-reader\.scopes\[1\]: must be one of/);
  });

  it('checks cross-field rules: stdio_principal, alarm_at, timezone, dedupe_window', () => {
    expect(problems(DEMO_POLICY_YAML.replace('stdio_principal: helpdesk-agent', 'stdio_principal: ghost'))).toContain(
      'stdio_principal: must name a principal under principals',
    );
    expect(problems(DEMO_POLICY_YAML.replace('limit: 200, alarm_at: 50', 'limit: 200, alarm_at: 500'))).toContain('tools.password_reset.caps[0].alarm_at: must not exceed limit');
    expect(problems(DEMO_POLICY_YAML.replace('timezone: UTC', 'timezone: Mars/Olympus'))[0]).toMatch(/^timezone: expected an IANA time zone/);
    expect(problems(DEMO_POLICY_YAML.replace('dedupe_window: 15m', 'dedupe_window: soon'))[0]).toMatch(/dedupe_window: expected 0 or a duration/);
  });

  it('refuses cap rules that could never apply: duplicate names, keys or measures the tool does not have', () => {
    const dup = DEMO_POLICY_YAML.replace('name: tickets-per-requester', 'name: tickets-per-day');
    expect(problems(dup)).toContain('tools.ticket_create.caps[1].name: duplicate cap name "tickets-per-day"');
    const per = DEMO_POLICY_YAML.replace('per: requester, limit: 5', 'per: target, limit: 5');
    expect(problems(per)[0]).toMatch(/^tools\.ticket_create\.caps\[1\]\.per: ticket_create has no target/);
    const cost = DEMO_POLICY_YAML.replace('{ name: resets-per-day, window: day, limit: 200, alarm_at: 50 }', '{ name: resets-per-day, window: day, measure: cost_usd, limit: 200 }');
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
      writeFileSync(f, DEMO_POLICY_YAML.replace('timezone: UTC', 'timezone: Europe/Berlin'));
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
});
