/** The policy lint (src/policy/lint.ts): a principal that can both request and approve is warned about. */
import { describe, expect, it } from 'vitest';
import { policyWarnings, WRITE_TOOLS } from '../../src/policy/lint.js';
import { ALL_TOOLS } from '../../src/tools/index.js';
import { policyWith } from '../helpers/harness.js';

const approverScopes = '  it-approver:    { scopes: [approvals:decide, audit:read] }';
const withApprover = (scopes: string, edit: (y: string) => string = (y) => y) =>
  policyWith((y) => edit(y.replace(approverScopes, `  it-approver:    { scopes: [${scopes}] }`)));

describe('policy lint: approver_can_request', () => {
  it('the demo policy has no warnings', () => {
    expect(policyWarnings(policyWith())).toEqual([]);
  });

  it('software:install with approvals:decide on one principal is a warning naming both and the tool', () => {
    const [w, ...rest] = policyWarnings(withApprover('approvals:decide, audit:read, software:read, software:install'));
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
    const scopes = 'approvals:decide, tickets:write, password:reset';
    // Demo tiers: tickets auto, password_reset mfa (decided by the target user's code, not an approver): no warning.
    expect(policyWarnings(withApprover(scopes))).toEqual([]);
    for (const tier of ['approval', 'confirm'])
      expect(
        policyWarnings(
          withApprover(scopes, (y) =>
            y.replace('  ticket_create:\n    tier: auto\n', `  ticket_create:\n    tier: ${tier}\n`),
          ),
        ),
      ).toMatchObject([
        { principal: 'it-approver', scopes: ['tickets:write', 'approvals:decide'], tools: ['ticket_create'] },
      ]);
  });

  it('software_install counts by its self-service tier too, and not when it is disabled or never asks an approver', () => {
    const scopes = 'approvals:decide, software:install';
    const install = (edit: string) =>
      policyWarnings(
        withApprover(scopes, (y) => y.replace('    tier: approval\n    self_service_tier: confirm\n', edit)),
      );
    expect(install('    tier: auto\n    self_service_tier: confirm\n')).toHaveLength(1);
    expect(install('    tier: auto\n')).toHaveLength(1); // self-service defaults to confirm
    expect(install('    tier: auto\n    self_service_tier: auto\n')).toEqual([]);
    expect(install('    tier: approval\n    enabled: false\n')).toEqual([]);
  });

  it('several principals and several scopes: one warning per principal, with every scope and tool', () => {
    const p = policyWith((y) =>
      y
        .replace(approverScopes, '  it-approver:    { scopes: [approvals:decide, software:install] }')
        .replace('software:read, software:install] }', 'software:read, software:install, approvals:decide] }')
        .replace('  ticket_create:\n    tier: auto\n', '  ticket_create:\n    tier: approval\n'),
    );
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
