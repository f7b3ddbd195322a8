/** The policy lint (src/policy/lint.ts): a principal that can both request and approve is warned about. */
import { describe, expect, it } from 'vitest';
import { policyWarnings, WRITE_TOOLS } from '../../src/policy/lint.js';
import { ALL_TOOLS } from '../../src/tools/index.js';
import type { Scope } from '../../src/core/policy.js';
import { policyWith } from '../helpers/harness.js';
import { demoPolicy, type PolicyBuilder, type ToolInput } from '../helpers/policy-builder.js';

/** The demo policy with it-approver's scopes set to `scopes`, then `edit`. */
const withApprover = (scopes: Scope[], edit: (p: PolicyBuilder) => PolicyBuilder = (p) => p) =>
  edit(demoPolicy().principal('it-approver', scopes)).parse();

describe('policy lint: approver_can_request', () => {
  it('the demo policy has no warnings', () => {
    expect(policyWarnings(policyWith())).toEqual([]);
  });

  it('software:install with approvals:decide on one principal is a warning naming both and the tool', () => {
    const [w, ...rest] = policyWarnings(
      withApprover(['approvals:decide', 'audit:read', 'software:read', 'software:install']),
    );
    expect(rest).toEqual([]);
    expect(w).toEqual({
      code: 'approver_can_request',
      principal: 'it-approver',
      scopes: ['software:install', 'approvals:decide'],
      tools: ['software_install'],
      message: expect.stringMatching(
        /^principal it-approver holds software:install and approvals:decide: .*refuses self-approval at decision time.*separation of duties is weak/,
      ),
    });
  });

  it('any write scope whose tool can wait for an approver: a ticket tool set to tier approval or confirm', () => {
    const scopes: Scope[] = ['approvals:decide', 'tickets:write', 'password:reset'];
    // Demo tiers: tickets auto, password_reset mfa (decided by the target user's code, not an approver): no warning.
    expect(policyWarnings(withApprover(scopes))).toEqual([]);
    for (const tier of ['approval', 'confirm'] as const)
      expect(policyWarnings(withApprover(scopes, (p) => p.tool('ticket_create', { tier })))).toMatchObject([
        { principal: 'it-approver', scopes: ['tickets:write', 'approvals:decide'], tools: ['ticket_create'] },
      ]);
  });

  it('software_install counts by its self-service tier too, and not when it is disabled or never asks an approver', () => {
    // `spec` stands for software_install's tier and self_service_tier (its caps stay)
    const install = (spec: ToolInput) =>
      policyWarnings(
        withApprover(['approvals:decide', 'software:install'], (p) =>
          p.tool('software_install', { tier: undefined, self_service_tier: undefined, ...spec }),
        ),
      );
    expect(install({ tier: 'auto', self_service_tier: 'confirm' })).toHaveLength(1);
    expect(install({ tier: 'auto' })).toHaveLength(1); // self-service defaults to confirm
    expect(install({ tier: 'auto', self_service_tier: 'auto' })).toEqual([]);
    expect(install({ tier: 'approval', enabled: false })).toEqual([]);
  });

  it('several principals and several scopes: one warning per principal, with every scope and tool', () => {
    const p = demoPolicy()
      .principal('it-approver', ['approvals:decide', 'software:install'])
      .grant('helpdesk-agent', 'approvals:decide')
      .tool('ticket_create', { tier: 'approval' })
      .parse();
    const approvers = policyWarnings(p).flatMap((w) => (w.code === 'approver_can_request' ? [w] : []));
    expect(approvers.map(({ principal, scopes, tools }) => ({ principal, scopes, tools }))).toEqual([
      {
        principal: 'helpdesk-agent',
        scopes: ['tickets:write', 'software:install', 'approvals:decide'],
        tools: ['ticket_create', 'software_install'],
      },
      { principal: 'it-approver', scopes: ['software:install', 'approvals:decide'], tools: ['software_install'] },
    ]);
  });

  it("the lint's table of write tools agrees with the tool definitions", () => {
    const writes = ALL_TOOLS.filter((t) => t.effect === 'write');
    expect(Object.keys(WRITE_TOOLS).sort()).toEqual(writes.map((t) => t.name).sort());
    for (const t of writes) expect(WRITE_TOOLS[t.name]).toMatchObject({ scope: t.scope, tier: t.tier });
  });
});

describe('policy lint: deprecated_key (the session: bounds of earlier policies)', () => {
  it('reads session: bounds as task: bounds, per: session as per: task, and says so; task: wins where both are set', () => {
    const p = demoPolicy()
      .set('task', { max_calls: 12 })
      .set('session', { max_calls: 99, max_identical_calls: 7 })
      .set('loop', { identical_per_hour: 20, failures_in_a_row: 10 })
      .budget({ name: 'user-calls-per-hour', window: 'hour', per: 'session', limit: 200, alarm_at: 60 })
      .parse();
    expect(p.task).toMatchObject({ maxCalls: 12, maxIdenticalCalls: 7, maxConsecutiveFailures: 5 });
    expect(p.session.maxPerPrincipal).toBe(64);
    expect(p.loop.trippedTasksPerHour).toBe(10);
    expect(p.budgets.find((b) => b.name === 'user-calls-per-hour')?.per).toBe('task');
    const w = policyWarnings(p).filter((x) => x.code === 'deprecated_key');
    expect(w.map((x) => (x.code === 'deprecated_key' ? x.path : ''))).toEqual([
      'session.max_calls',
      'session.max_identical_calls',
      'loop.identical_per_hour',
      'loop.failures_in_a_row',
      'budgets.2.per',
    ]);
    expect(w[0]!.message).toMatch(/ignored: task\.max_calls is set/);
    expect(w[1]!.message).toMatch(/read as task\.max_identical_calls/);
  });
});
