/**
 * Warnings about a valid policy: settings that load and work but weaken a guarantee. `itguard policy check` prints
 * them (text and `--json`); they never change its exit status, and `serve` does not refuse them.
 *
 * - `deprecated_key`: a key of an earlier format, read under its new meaning or ignored (`session:` bounds are
 *   `task:` bounds now; the principal-wide `loop.identical_per_hour` and `loop.failures_in_a_row` are gone).
 * - `approver_can_request`: a principal holds `approvals:decide` together with a write scope whose tool can end up
 *   waiting for an approver (tier `approval`, or `confirm`, which escalates to an approver when the client cannot
 *   confirm; for `software_install` also the self-service tier). The approvals store still refuses a decision on
 *   the decider's own request (`self_approval`), but the same credential can both make requests and approve
 *   everyone else's: the separation of duties rests on one check at decision time.
 */
import type { Policy } from './schema.js';
import type { Scope, Tier, ToolName } from '../core/policy.js';

export type PolicyWarning =
  | {
      code: 'approver_can_request';
      principal: string;
      /** The scopes that together raise the warning: the write scopes, then `approvals:decide`. */
      scopes: Scope[];
      /** The enabled tools of those write scopes that can wait for an approver. */
      tools: ToolName[];
      message: string;
    }
  /** A key of an earlier policy format (`session.max_calls`, `loop.identical_per_hour`, `per: session`, ...). */
  | { code: 'deprecated_key'; path: string; message: string };

/**
 * The write tools: their scope, default tier, and whether some calls take the self-service tier instead. The same
 * facts as the tool definitions in src/tools (test/policy/lint.test.ts checks the two agree); kept here so that the
 * policy code does not load the tools and their backends.
 */
export const WRITE_TOOLS: Readonly<Partial<Record<ToolName, { scope: Scope; tier: Tier; selfService?: true }>>> = {
  ticket_create: { scope: 'tickets:write', tier: 'auto' },
  ticket_comment: { scope: 'tickets:write', tier: 'auto' },
  password_reset: { scope: 'password:reset', tier: 'mfa' },
  software_install: { scope: 'software:install', tier: 'approval', selfService: true },
};

/** Tiers in which a call can wait for a principal with `approvals:decide`. */
const DECIDED_BY_APPROVER: readonly Tier[] = ['approval', 'confirm'];

/** The enabled write tools whose calls can wait for an approver under this policy, by scope. */
function approvalScopes(p: Policy): Map<Scope, ToolName[]> {
  const by = new Map<Scope, ToolName[]>();
  for (const [name, w] of Object.entries(WRITE_TOOLS) as [ToolName, NonNullable<(typeof WRITE_TOOLS)[ToolName]>][]) {
    const t = p.tools[name];
    if (!t.enabled) continue;
    const tiers = [t.tier ?? w.tier, ...(w.selfService ? [t.selfServiceTier ?? 'confirm'] : [])];
    if (!tiers.some((x) => DECIDED_BY_APPROVER.includes(x))) continue;
    by.set(w.scope, [...(by.get(w.scope) ?? []), name]);
  }
  return by;
}

export function policyWarnings(p: Policy): PolicyWarning[] {
  const gated = approvalScopes(p);
  const warnings: PolicyWarning[] = [];
  for (const [principal, { scopes }] of Object.entries(p.principals)) {
    if (!scopes.includes('approvals:decide')) continue;
    const writes = [...gated.keys()].filter((s) => scopes.includes(s));
    if (!writes.length) continue;
    const tools = writes.flatMap((s) => gated.get(s)!);
    warnings.push({
      code: 'approver_can_request',
      principal,
      scopes: [...writes, 'approvals:decide'],
      tools,
      message:
        `principal ${principal} holds ${writes.join(', ')} and approvals:decide: it can request ${tools.join(', ')} ` +
        'and decide approval requests. The store still refuses self-approval at decision time, but the separation ' +
        'of duties is weak; give approvals:decide to a principal that makes no requests.',
    });
  }
  for (const d of p.deprecated) warnings.push({ code: 'deprecated_key', path: d.path, message: d.message });
  return warnings;
}
