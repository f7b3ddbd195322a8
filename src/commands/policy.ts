/** `itguard policy check [FILE]`: prints the effective policy or its errors (exit 2). */
import { loadPolicy, PolicyError } from '../policy/load.js';
import { TOOL_NAMES, type Policy } from '../policy/schema.js';
import { err, out, printJson, type Flags } from './common.js';

export function policyCheck(flags: Flags): number {
  const [verb, file] = flags.positionals;
  if (verb !== 'check') {
    err('usage: itguard policy check [FILE]');
    return 2;
  }
  let loaded;
  try {
    loaded = loadPolicy(file ?? flags.policyFlag);
  } catch (e) {
    if (e instanceof PolicyError) {
      if (flags.json) printJson({ ok: false, source: e.source, errors: e.problems });
      else err(e.message);
      return 2;
    }
    throw e;
  }
  if (flags.json) printJson({ ok: true, source: loaded.source, policy: loaded.policy });
  else out(describe(loaded.policy, loaded.source));
  return 0;
}

export function describe(p: Policy, source: string): string {
  const lines = [`policy OK (${source})`, `timezone ${p.timezone}, durability ${p.durability}, stdio principal ${p.stdioPrincipal}`, '', 'principals:'];
  for (const [name, v] of Object.entries(p.principals)) lines.push(`  ${name}: ${v.scopes.join(', ') || '(no scopes)'}`);
  const s = p.session;
  lines.push('', `session: max_calls ${s.maxCalls}, max_minutes ${s.maxMinutes}, max_result_bytes ${s.maxResultBytes}, max_identical_calls ${s.maxIdenticalCalls}, max_consecutive_failures ${s.maxConsecutiveFailures}`);
  lines.push(`mfa: allow_form_code ${p.mfa.allowFormCode}, out_of_band ${p.mfa.outOfBand}; approvals: wait ${p.approvals.waitSeconds}s, expire ${p.approvals.expireHours}h`, '', 'tools:');
  for (const name of TOOL_NAMES) {
    const t = p.tools[name];
    const flags = [t.enabled ? '' : 'DISABLED', t.mode === 'shadow' ? 'shadow' : ''].filter(Boolean).join(' ');
    lines.push(`  ${name}: tier ${t.tier ?? 'default'}${t.selfServiceTier ? ` (self-service ${t.selfServiceTier})` : ''}${flags ? ` ${flags}` : ''}`);
    if (t.denyTargetGroups.length) lines.push(`    deny_target_groups: ${t.denyTargetGroups.join(', ')}`);
    for (const c of t.caps) {
      lines.push(`    cap ${c.name}: ${c.limit} ${c.measure === 'cost_usd' ? 'USD' : 'calls'} per ${c.window}${c.per === 'global' ? '' : ` per ${c.per}`}${c.alarmAt ? `, alarm at ${c.alarmAt}` : ''}`);
    }
  }
  const t = p.backends.tickets;
  lines.push('', `backends: tickets embedded (project ${t.project}, allowed ${t.allowedProjects.join(', ')}), directory embedded, deploy embedded; demo data ${p.demo ? 'on' : 'off'}`);
  return lines.join('\n');
}
