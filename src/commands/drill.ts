/**
 * `itguard drill`: a kill-switch drill against a real server process. Starts `itguard serve --stdio` on the
 * same database, drives a synthetic load of guarded calls, engages the kill switch, measures how long until
 * calls stop executing, checks from the audit that nothing started executing after engagement, resumes, and
 * records the report in the audit.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, type CallToolResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { parseDocument } from 'yaml';
import { setKillSwitch } from '../guard/operator.js';
import { connectStores } from '../app.js';
import { DEMO_POLICY_YAML } from '../policy/demo.js';
import { cliActor, err, out, policyOrExit, printJson, UsageError, type Flags, sqliteFileOf } from './common.js';

export interface DrillReport {
  result: 'PASS' | 'FAIL';
  engaged_at: string;
  /** Client-observed: from engagement to the first refused call. */
  first_refusal_ms: number | null;
  /** From the audit: latest start of an executed call minus engagement (negative = all started before). */
  last_execution_start_ms: number | null;
  calls_before: number;
  calls_refused_after: number;
  executed_after_engagement: number;
  audit_refusals_after: number;
  load_concurrency: number;
  failures: string[];
}

const CLI_PATH = fileURLToPath(new URL('../cli.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The drill's own principal: its load is counted under this name, never against a real principal's budgets. */
export const DRILL_PRINCIPAL = 'itguard-drill';

/**
 * The same policy, served as the drill's own principal (read-only KB scope) with session and principal bounds
 * raised, so the drill's load is neither stopped by budgets or the breaker nor spends a real principal's budget.
 */
function drillPolicy(source: string | undefined, dir: string): string {
  const doc = parseDocument(source ? readFileSync(source, 'utf8') : DEMO_POLICY_YAML);
  doc.delete('session');
  doc.set('task', {
    max_calls: 1_000_000,
    max_minutes: 60,
    max_result_bytes: 1_000_000_000,
    max_identical_calls: 1_000_000,
    max_consecutive_failures: 1_000_000,
  });
  doc.setIn(['principals', DRILL_PRINCIPAL], { scopes: ['kb:read'] });
  doc.set('stdio_principal', DRILL_PRINCIPAL);
  doc.set('budgets', []);
  doc.set('loop', { tripped_tasks_per_hour: 1_000_000 });
  const file = join(dir, 'drill-policy.yaml');
  writeFileSync(file, doc.toString());
  return file;
}

export async function drill(flags: Flags): Promise<number> {
  const { policy, source } = policyOrExit(flags);
  const seconds = Number(flags.values.seconds ?? 1.5);
  const concurrency = Number(flags.values.concurrency ?? 4);
  if (!(seconds > 0 && seconds <= 60)) throw new UsageError('--seconds: expected 0 < s <= 60');
  if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 64))
    throw new UsageError('--concurrency: expected 1..64');
  const stores = await connectStores(sqliteFileOf(flags, policy.store), policy);
  if ((await stores.store.killSwitch.state()).engaged) {
    err('drill: the kill switch is already engaged; resume first (itguard resume --reason ...)');
    await stores.close();
    return 2;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'itguard-drill-'));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      CLI_PATH,
      'serve',
      '--stdio',
      '--db',
      flags.db,
      '--policy',
      drillPolicy(source === 'built-in demo policy' ? undefined : source, tmp),
    ],
    env: { ...(process.env as Record<string, string>), ITGUARD_LOG_LEVEL: 'warn' },
    stderr: 'inherit',
  });
  const client = new Client({ name: 'itguard-drill', version: '1' });
  await client.connect(transport);

  const queries = [
    'vpn',
    'printer offline',
    'mfa new phone',
    'outlook',
    'wifi slow',
    'password policy',
    'bitlocker',
    'docking station',
  ];
  let phase: 'before' | 'after' | 'stop' = 'before';
  let engagedAt = 0;
  let firstRefusal: number | null = null;
  let before = 0;
  let refusedAfter = 0;
  const failures: string[] = [];
  const worker = async (w: number) => {
    for (let i = 0; phase !== 'stop'; i++) {
      const name = 'kb_search';
      const args = { query: `${queries[(i + w) % queries.length]} ${w}-${i}`, limit: 3 };
      const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
      const code = (r._meta?.['itguard/error'] as { code?: string } | undefined)?.code;
      if (code === 'KILL_SWITCH_ENGAGED') {
        refusedAfter += 1;
        firstRefusal ??= Date.now();
      } else if (phase === 'before') before += 1;
      if (phase === 'after' && code === 'KILL_SWITCH_ENGAGED') await sleep(5);
    }
  };
  const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
  await sleep(seconds * 1000);
  const engagedRecord = await setKillSwitch(stores, true, 'kill-switch drill', cliActor());
  // Measured once the engagement has committed: from here on no process can see the switch off.
  engagedAt = Date.now();
  phase = 'after';
  await sleep(Math.max(seconds * 1000, 1200));
  phase = 'stop';
  await Promise.all(workers);
  // Resume only our own engagement: if someone engaged the switch for real during the drill, it stays engaged.
  const now = await stores.store.killSwitch.state();
  const ours = now.engaged && now.changedAt === engagedRecord.changedAt && now.reason === 'kill-switch drill';
  const resumedAt = ours
    ? (await setKillSwitch(stores, false, 'kill-switch drill over', cliActor())).changedAt
    : Date.now();
  if (!ours) failures.push('the kill switch was changed by someone else during the drill; it was left as they set it');
  await client.close();
  rmSync(tmp, { recursive: true, force: true });

  // Verify from the audit, not from what the client saw.
  // guard_status answers during an engagement by design (the planner must see it); everything else must not run.
  const rows = await stores.store.auditLog.callRecordsBetween(engagedRecord.changedAt, resumedAt, 'guard_status');
  let lastStart: number | null = null;
  let executedAfter = 0;
  let auditRefusals = 0;
  for (const r of rows) {
    const started = r.detail ? (JSON.parse(r.detail) as { started_at?: number }).started_at : undefined;
    if (r.event === 'call.outcome' && typeof started === 'number' && started <= resumedAt) {
      lastStart = Math.max(lastStart ?? -Infinity, started);
      if (started > engagedAt) executedAfter += 1;
    }
    // Refused at step 1 (call.denied) or by the re-check right before the side effect (call.outcome).
    if (r.code === 'KILL_SWITCH_ENGAGED') auditRefusals += 1;
  }
  const firstRefusalMs = firstRefusal === null ? null : firstRefusal - engagedAt;
  if (executedAfter > 0) failures.push(`${executedAfter} call(s) started executing after engagement`);
  if (firstRefusalMs === null) failures.push('no call was refused after engagement');
  else if (firstRefusalMs > 1000) failures.push(`first refusal took ${firstRefusalMs} ms (> 1000 ms)`);
  if (before === 0) failures.push('the synthetic load made no successful call before engagement');
  const report: DrillReport = {
    result: failures.length ? 'FAIL' : 'PASS',
    engaged_at: new Date(engagedAt).toISOString(),
    first_refusal_ms: firstRefusalMs,
    last_execution_start_ms: lastStart === null ? null : lastStart - engagedAt,
    calls_before: before,
    calls_refused_after: refusedAfter,
    executed_after_engagement: executedAfter,
    audit_refusals_after: auditRefusals,
    load_concurrency: concurrency,
    failures,
  };
  await stores.audit.record(
    {
      event: 'drill',
      actor: cliActor(),
      outcome: report.result.toLowerCase(),
      detail: { ...report },
    },
    true,
  );
  await stores.close();

  if (flags.json) printJson(report);
  else {
    out(`kill-switch drill: ${report.result}`);
    out(`  engaged at                       ${report.engaged_at}`);
    out(`  calls served before engagement   ${before} (load: ${concurrency} concurrent)`);
    out(`  first refusal after engagement   ${firstRefusalMs ?? '-'} ms`);
    out(`  last execution start (audit)     ${report.last_execution_start_ms ?? '-'} ms relative to engagement`);
    out(`  executed after engagement        ${executedAfter}`);
    out(`  refused after engagement         ${refusedAfter} (client) / ${auditRefusals} (audit)`);
    for (const f of failures) out(`  FAIL: ${f}`);
    out(`  ${ours ? 'kill switch resumed' : 'kill switch left as someone else set it'}; drill recorded in the audit`);
  }
  return failures.length ? 1 : 0;
}
