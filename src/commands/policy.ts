/**
 * `itguard policy check [FILE] [--probe]`: prints the effective policy or its errors (exit 2), and the policy's
 * warnings (src/policy/lint.ts: printed, in `--json` as `warnings`, never changing the exit status). With `--probe` it
 * also connects to each configured non-embedded backend with its credentials and reports reachability and the
 * permissions itguard needs, changing nothing (exit 1 when a probe fails, naming the backend and the reason), and the
 * store the policy names (store/probe.ts: kind, reachable, server version, schema version against this build's latest;
 * for SQLite the file and its user_version): a store that cannot serve this itguard fails the probe too.
 */
import { externalAdapters } from '../backends/build.js';
import type { ProbeReport } from '../core/backend.js';
import { ConfigError } from '../config.js';
import { probeNotify } from '../notify/probe.js';
import { policyWarnings } from '../policy/lint.js';
import { loadPolicy, PolicyError } from '../policy/load.js';
import { safeText } from '../terminal.js';
import { TOOL_NAMES } from '../core/policy.js';
import type { Policy } from '../policy/schema.js';
import { err, out, printJson, sqliteFileOf, type Flags } from './common.js';

export async function policyCheck(flags: Flags): Promise<number> {
  const [verb, file] = flags.positionals;
  if (verb !== 'check') {
    err('usage: itguard policy check [FILE] [--probe]');
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
  if (flags.values.probe === true) return probe(flags, loaded.policy, loaded.source);
  const warnings = policyWarnings(loaded.policy);
  if (flags.json) printJson({ ok: true, source: loaded.source, warnings, policy: loaded.policy });
  else out(describe(loaded.policy, loaded.source));
  return 0;
}

const PROBE_TIMEOUT_MS = 20_000;

async function probe(flags: Flags, policy: Policy, source: string): Promise<number> {
  let adapters;
  try {
    adapters = externalAdapters({ policy });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    if (flags.json) printJson({ ok: false, source, errors: [e.message] });
    else err(e.message);
    return 2;
  }
  const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
  const b = policy.backends;
  const runs: [string, string, (() => Promise<ProbeReport>) | undefined][] = [
    [
      'tickets',
      b.tickets.kind,
      adapters.tickets && (() => adapters.tickets!.probe({ signal, projects: b.tickets.allowedProjects })),
    ],
    ['directory', b.directory.kind, adapters.directory && (() => adapters.directory!.probe({ signal }))],
    ['outbox', b.outbox.kind, adapters.outbox && (() => adapters.outbox!.probe({ signal }))],
    ['factors', b.factors.kind, adapters.factors && (() => adapters.factors!.probe({ signal }))],
    ['deploy', b.deploy.kind, adapters.deploy && (() => adapters.deploy!.probe({ signal }))],
    ['kb', b.kb.kind, adapters.kb && (() => adapters.kb!.probe({ signal }))],
  ];
  const n = policy.notify;
  if (n && (n.slack || n.webhooks.length))
    runs.push(['notify', n.slack ? 'slack' : 'webhooks', () => probeNotify(n, process.env, signal)]);
  const reports = await Promise.all(
    runs.map(async ([name, kind, run]) => {
      if (!run) return { backend: name, kind, target: 'the itguard database', ok: true, checks: [], embedded: true };
      const r = await run().catch((e: unknown): ProbeReport => ({
        backend: name,
        target: '',
        ok: false,
        checks: [{ name: 'probe', ok: false, detail: e instanceof Error ? e.message : String(e) }],
      }));
      return { ...r, backend: name, kind, adapter: r.backend, embedded: false };
    }),
  );
  // Loaded here, not at the top: the SQLite driver is a native addon `policy check` alone does not need.
  const { probeStore } = await import('../store/probe.js');
  const { storeConfigOf } = await import('../store/config.js');
  const cfg = storeConfigOf(policy);
  const store = await probeStore(cfg, sqliteFileOf(flags, cfg));
  const ok = reports.every((r) => r.ok) && store.ok;
  const warnings = policyWarnings(policy);
  if (flags.json) printJson({ ok, source, warnings, store, backends: reports });
  else {
    for (const w of warnings) out(`warning: ${safeText(w.message)}`);
    out(`${store.ok ? 'ok  ' : 'FAIL'} store (${store.kind}): ${safeText(store.target)}: ${safeText(store.detail)}`);
    for (const r of reports) {
      const head = `${r.ok ? 'ok  ' : 'FAIL'} ${r.backend} (${r.kind})`;
      if (r.embedded) {
        out(`${head}: in the itguard database; nothing to probe`);
        continue;
      }
      out(`${head}: ${safeText(r.target)}`);
      for (const c of r.checks)
        out(`       ${c.ok ? 'ok  ' : 'FAIL'} ${safeText(c.name)}${c.detail ? `: ${safeText(c.detail)}` : ''}`);
    }
    const failed = [...(store.ok ? [] : ['store']), ...reports.filter((r) => !r.ok).map((r) => r.backend)];
    if (failed.length) err(`probe failed: ${failed.join(', ')}`);
  }
  return ok ? 0 : 1;
}

export function describe(p: Policy, source: string): string {
  const lines = [
    `policy OK (${source})`,
    ...policyWarnings(p).map((w) => `warning: ${safeText(w.message)}`),
    `timezone ${p.timezone}, durability ${p.durability}, stdio principal ${p.stdioPrincipal}`,
    '',
    'principals:',
  ];
  for (const [name, v] of Object.entries(p.principals))
    lines.push(`  ${name}: ${v.scopes.join(', ') || '(no scopes)'}`);
  const tk = p.task;
  lines.push(
    '',
    `task: identify ${tk.identify.join(', ')}, idle_minutes ${tk.idleMinutes}, max_calls ${tk.maxCalls}, max_minutes ${tk.maxMinutes}, max_result_bytes ${tk.maxResultBytes}, max_identical_calls ${tk.maxIdenticalCalls}, max_consecutive_failures ${tk.maxConsecutiveFailures}`,
    `budgets: ${p.budgets.map((b) => `${b.name} (${b.limit} ${b.measure.replace('_', ' ')} per ${b.per} per ${b.window})`).join('; ') || 'none'}`,
    `fleet breaker: tripped_tasks_per_hour ${p.loop.trippedTasksPerHour}; sessions: max_per_principal ${p.session.maxPerPrincipal}`,
  );
  lines.push(
    `mfa: allow_form_code ${p.mfa.allowFormCode}, out_of_band ${p.mfa.outOfBand}; approvals: wait ${p.approvals.waitSeconds}s, expire ${p.approvals.expireHours}h`,
    '',
    'tools:',
  );
  for (const name of TOOL_NAMES) {
    const t = p.tools[name];
    const flags = [t.enabled ? '' : 'DISABLED', t.mode === 'shadow' ? 'shadow' : ''].filter(Boolean).join(' ');
    lines.push(
      `  ${name}: tier ${t.tier ?? 'default'}${t.selfServiceTier ? ` (self-service ${t.selfServiceTier})` : ''}${flags ? ` ${flags}` : ''}`,
    );
    if (t.denyTargetGroups.length) lines.push(`    deny_target_groups: ${t.denyTargetGroups.join(', ')}`);
    for (const c of t.caps) {
      lines.push(
        `    cap ${c.name}: ${c.limit} ${c.measure === 'cost_usd' ? 'USD' : 'calls'} per ${c.window}${c.per === 'global' ? '' : ` per ${c.per}`}${c.alarmAt ? `, alarm at ${c.alarmAt}` : ''}`,
      );
    }
  }
  const b = p.backends;
  const t = b.tickets;
  const where = (kind: string, at?: string) => (kind === 'embedded' ? 'embedded' : `${kind} ${at ?? ''}`.trim());
  lines.push(
    '',
    `backends: tickets ${where(t.kind, t.kind === 'jira' ? t.baseUrl : undefined)} (project ${t.project}, allowed ${t.allowedProjects.join(', ')}), ` +
      `directory ${where(b.directory.kind, b.directory.kind === 'ldap' ? `${b.directory.url} (${b.directory.flavor})` : b.directory.kind === 'okta' ? b.directory.orgUrl : undefined)}, ` +
      `outbox ${where(b.outbox.kind, b.outbox.kind === 'smtp' ? `from ${b.outbox.from}` : undefined)}, ` +
      `deploy ${where(b.deploy.kind, b.deploy.kind === 'intune' ? `${b.deploy.graphUrl} (${Object.keys(b.deploy.apps).length} app(s), assign ${b.deploy.assign})` : undefined)}, ` +
      `factors ${b.factors.kind === 'okta' ? `okta ${b.factors.orgUrl} (push)` : 'embedded (TOTP)'}, ` +
      `kb ${where(b.kb.kind, b.kb.kind === 'confluence' ? `${b.kb.baseUrl} (spaces ${b.kb.spaces.join(', ')})` : undefined)}; demo data ${p.demo ? 'on' : 'off'}`,
  );
  const a = p.auth;
  lines.push(
    a
      ? `auth: OAuth access tokens for ${a.audience} from ${a.issuers.join(', ')}; principal from ${
          a.principalClaim !== undefined
            ? `claim ${a.principalClaim}`
            : `${a.groupsClaim} (${(a.principalsFromGroups ?? []).map((m) => `${m.group} → ${m.principal}`).join(', ')})`
        }${a.requiredScopes.length ? `; requires scope ${a.requiredScopes.join(' ')}` : ''}; static tokens ${a.staticTokens ? 'on' : 'off'}`
      : 'auth: static bearer tokens only (no auth: block)',
  );
  return lines.join('\n');
}
