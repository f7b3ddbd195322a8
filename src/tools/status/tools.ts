import { defineTool } from '../../guard/types.js';

export const guardStatus = defineTool({
  name: 'guard_status',
  title: 'See this agent’s own bounds',
  description:
    'Shows the guardrails on this session: kill switch, principal and scopes, calls and minutes left in the session budget, and each aggregate cap’s used/limit/resets_at. Call it to plan within your limits.',
  input: {},
  scope: 'none',
  effect: 'read',
  tier: 'auto',
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  capKeys: () => ({}),
  servesWhileKilled: true,
  polling: true,
  summary: () => 'Show guard status',
  async run(_a, ctx) {
    const v = ctx.guardView();
    const ks = v.killSwitch.engaged ? `ENGAGED (${v.killSwitch.reason})` : 'off';
    const caps = v.caps.length
      ? v.caps.map((c) => `  ${String(c.tool)} ${String(c.rule)}: ${String(c.used)}/${String(c.limit)} (resets ${String(c.resets_at)})`).join('\n')
      : '  none yet';
    const s = Object.entries(v.session).map(([k, val]) => `  ${k}: ${String(val)}`).join('\n');
    return {
      text: `Kill switch: ${ks}\nPrincipal: ${ctx.principal.name}\nScopes: ${ctx.principal.scopes.join(', ') || '(none)'}\nSession:\n${s}\nCaps:\n${caps}`,
      data: { kill_switch: v.killSwitch, principal: ctx.principal.name, scopes: ctx.principal.scopes, session: v.session, caps: v.caps },
    };
  },
});
