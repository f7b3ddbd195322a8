/**
 * `itguard report autonomy`: per action class (tool × tier), how often human gates granted the action as asked.
 * Approvals are bound to their arguments, so every grant is a grant "unchanged"; a class granted (nearly) always
 * is a candidate for a lower tier. Sources: the approvals table (approval and mfa tiers) and the audit's
 * confirm events (confirm tier).
 */
import { connectStores } from '../app.js';
import { safeText } from '../terminal.js';
import { err, out, policyOrExit, printJson, type Flags, sqliteFileOf } from './common.js';

interface ClassRow {
  tool: string;
  tier: string;
  requests: number;
  granted: number;
  denied: number;
  expired: number;
  open: number;
  grant_rate: number | null;
}

export async function reportAutonomy(flags: Flags): Promise<number> {
  if (flags.positionals[0] !== 'autonomy') {
    err('usage: itguard report autonomy [--json]');
    return 2;
  }
  const { policy } = policyOrExit(flags);
  const s = await connectStores(sqliteFileOf(flags, policy.store), policy);
  const rows = await s.store.approvals.countsByClass();
  const confirms = await s.store.auditLog.confirmCounts();
  await s.close();

  const classes = new Map<string, ClassRow>();
  const get = (tool: string, tier: string) => {
    const k = `${tool}\u0000${tier}`;
    let c = classes.get(k);
    if (!c)
      classes.set(k, (c = { tool, tier, requests: 0, granted: 0, denied: 0, expired: 0, open: 0, grant_rate: null }));
    return c;
  };
  for (const r of rows) {
    // A confirm request's decision is counted from its audit event (below), which every confirm answer leaves.
    if (r.tier === 'confirm') continue;
    const c = get(r.tool, r.tier);
    c.requests += r.n;
    if (['approved', 'executing', 'succeeded', 'failed'].includes(r.status)) c.granted += r.n;
    else if (r.status === 'denied') c.denied += r.n;
    else if (r.status === 'expired') c.expired += r.n;
    else c.open += r.n;
  }
  for (const r of confirms) {
    const c = get(r.tool, 'confirm');
    c.requests += r.n;
    if (r.event === 'approval.confirmed') c.granted += r.n;
    else c.denied += r.n;
  }
  const report = [...classes.values()]
    .map((c) => ({
      ...c,
      grant_rate: c.granted + c.denied + c.expired ? c.granted / (c.granted + c.denied + c.expired) : null,
    }))
    .sort((a, b) => a.tool.localeCompare(b.tool) || a.tier.localeCompare(b.tier));
  if (flags.json) printJson(report);
  else if (!report.length) out('no human-gated actions in the audit yet');
  else {
    out('tool              tier       requests  granted  denied  expired  open  granted unchanged');
    for (const c of report) {
      const rate = c.grant_rate === null ? '-' : `${(c.grant_rate * 100).toFixed(1)}%`;
      out(
        `${safeText(c.tool).padEnd(17)} ${safeText(c.tier).padEnd(10)} ${String(c.requests).padStart(8)} ${String(c.granted).padStart(8)} ${String(c.denied).padStart(7)} ${String(c.expired).padStart(8)} ${String(c.open).padStart(5)}  ${rate}`,
      );
    }
    out(
      '\nA class granted unchanged nearly always, over enough requests, is a candidate for a lower tier (try mode: shadow first).',
    );
  }
  return 0;
}
