import { z } from 'zod';
import { defineTool } from '../../guard/types.js';

export const guardStatus = defineTool({
  name: 'guard_status',
  title: 'See this agent’s own bounds',
  description:
    'Shows the guardrails on this agent: kill switch, principal and scopes, what is left of the session budget and of the principal’s budgets (across all its sessions), the loop breaker, and each aggregate cap’s used/limit/resets_at. Call it to plan within your limits.',
  input: {},
  scope: 'none',
  effect: 'read',
  tier: 'auto',
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  output: {
    kill_switch: z.looseObject({ engaged: z.boolean() }),
    principal: z.string(),
    on_behalf_of: z.string().optional(),
    scopes: z.array(z.string()),
    session: z.looseObject({}),
    budgets: z.array(z.looseObject({})),
    loop_breaker: z.looseObject({}),
    caps: z.array(z.looseObject({})),
  },
  servesWhileKilled: true,
  polling: true,
  summary: () => 'Show guard status',
  async run(_a, ctx) {
    const v = ctx.guardView();
    const ks = v.killSwitch.engaged ? `ENGAGED (${v.killSwitch.reason})` : 'off';
    const caps = v.caps.length
      ? v.caps
          .map(
            (c) =>
              `  ${String(c.tool)} ${String(c.rule)}: ${String(c.used)}/${String(c.limit)} (resets ${String(c.resets_at)})`,
          )
          .join('\n')
      : '  none yet';
    const s = Object.entries(v.session)
      .map(([k, val]) => `  ${k}: ${String(val)}`)
      .join('\n');
    const budgets = v.budgets.length
      ? v.budgets
          .map(
            (b) =>
              `  ${String(b.budget)} (per ${String(b.per)}): ${String(b.used)}/${String(b.limit)} ${String(b.measure).replace('_', ' ')} (resets ${String(b.resets_at)})`,
          )
          .join('\n')
      : '  none';
    const lb = v.loopBreaker;
    const breaker =
      lb.state === 'tripped'
        ? `TRIPPED (${String(lb.rule)}): ${String(lb.why)}; clears at ${String(lb.clears_at)}`
        : `ok (${String(lb.failures_in_a_row)} failure(s) in a row of ${String(lb.failures_in_a_row_limit)}; identical calls per hour ${String(lb.identical_per_hour)})`;
    return {
      text: `Kill switch: ${ks}\nPrincipal: ${ctx.principal.name}${ctx.principal.onBehalfOf ? ` (on behalf of ${ctx.principal.onBehalfOf})` : ''}\nScopes: ${ctx.principal.scopes.join(', ') || '(none)'}\nSession:\n${s}\nPrincipal budgets (all sessions):\n${budgets}\nPrincipal loop breaker: ${breaker}\nCaps:\n${caps}`,
      data: {
        kill_switch: v.killSwitch,
        principal: ctx.principal.name,
        ...(ctx.principal.onBehalfOf ? { on_behalf_of: ctx.principal.onBehalfOf } : {}),
        scopes: ctx.principal.scopes,
        session: v.session,
        budgets: v.budgets,
        loop_breaker: v.loopBreaker,
        caps: v.caps,
      },
    };
  },
});
