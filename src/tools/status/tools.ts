import { z } from 'zod';
import { defineTool } from '../../core/tool.js';

export const guardStatus = defineTool({
  name: 'guard_status',
  title: 'See this agent’s own bounds',
  description:
    'Shows the guardrails on this agent: kill switch, principal and scopes, this task (conversation) and what is left of its budget, the windowed budgets of its user and principal, the loop breakers, and each aggregate cap’s used/limit/resets_at. Call it to plan within your limits.',
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
    task: z.looseObject({ id: z.string(), identified_by: z.string() }),
    budgets: z.array(z.looseObject({})),
    loop_breaker: z.looseObject({}),
    caps: z.array(z.looseObject({})),
  },
  servesWhileKilled: true,
  polling: true,
  summary: () => 'Show guard status',
  async run(_a, ctx) {
    const v = await ctx.guardView();
    const ks = v.killSwitch.engaged ? `ENGAGED (${v.killSwitch.reason})` : 'off';
    const caps = v.caps.length
      ? v.caps
          .map(
            (c) =>
              `  ${String(c.tool)} ${String(c.rule)}: ${String(c.used)}/${String(c.limit)} (resets ${String(c.resets_at)})`,
          )
          .join('\n')
      : '  none yet';
    const s = Object.entries(v.task)
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
        : `ok (${String(lb.tripped_tasks_this_hour)} task(s) tripped this hour; the principal trips at ${String(lb.tripped_tasks_per_hour)})`;
    return {
      text: `Kill switch: ${ks}\nPrincipal: ${ctx.principal.name}${ctx.principal.onBehalfOf ? ` (on behalf of ${ctx.principal.onBehalfOf})` : ''}\nScopes: ${ctx.principal.scopes.join(', ') || '(none)'}\nThis task:\n${s}\nBudgets (this task, its user, the principal across all tasks):\n${budgets}\nFleet breaker (principal): ${breaker}\nCaps:\n${caps}`,
      data: {
        kill_switch: v.killSwitch,
        principal: ctx.principal.name,
        ...(ctx.principal.onBehalfOf ? { on_behalf_of: ctx.principal.onBehalfOf } : {}),
        scopes: ctx.principal.scopes,
        task: v.task,
        budgets: v.budgets,
        loop_breaker: v.loopBreaker,
        caps: v.caps,
      },
    };
  },
});
