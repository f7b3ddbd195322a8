/** The kill switch across processes: aborting a call in flight, and the drill's report checked against the audit. */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';

describe('kill switch across processes', () => {
  it('aborts a call that is waiting in another process within 1 s; the side effect never starts', async () => {
    for (let round = 0; round < 3; round++) {
      const tmp = tempDir();
      const db = join(tmp.dir, 'k.db');
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [CLI, 'serve', '--stdio', '--db', db],
        env: {
          ...(process.env as Record<string, string>),
          ITGUARD_FAILPOINT: 'before-effect',
          ITGUARD_LOG_LEVEL: 'warn',
        },
        stderr: 'ignore',
      });
      const client = new Client({ name: 'k', version: '1' });
      await client.connect(transport);
      const pending = client.callTool({
        name: 'ticket_create',
        arguments: { summary: 'stalled', requester: 'jdoe', reason: 'kill test' },
      }) as Promise<CallToolResult>;
      // wait until the call is inside execute (its intent is audited)
      for (let i = 0; i < 200; i++) {
        const d = new Database(db, { readonly: true });
        const n = (d.prepare("SELECT count(*) AS n FROM audit WHERE event = 'call.intent'").get() as { n: number }).n;
        d.close();
        if (n) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(runCli(['kill', '--reason', 'abort test', '--db', db]).code).toBe(0);
      const engaged = Date.now();
      const r = await pending;
      const took = Date.now() - engaged;
      expect((r._meta?.['itguard/error'] as { code: string }).code).toBe('KILL_SWITCH_ENGAGED');
      expect(took).toBeLessThan(1000);
      await client.close();
      const d = new Database(db, { readonly: true });
      expect((d.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number }).n).toBe(0);
      d.close();
      tmp.cleanup();
    }
  }, 90_000);
});

describe('itguard drill', () => {
  it('reports numbers that match the audit', async () => {
    const tmp = tempDir();
    const db = join(tmp.dir, 'drill.db');
    runCli(['status', '--db', db]);
    const r = runCli(['drill', '--json', '--seconds', '0.8', '--db', db]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      result: string;
      engaged_at: string;
      executed_after_engagement: number;
      audit_refusals_after: number;
      calls_refused_after: number;
      first_refusal_ms: number;
    };
    expect(report.result).toBe('PASS');
    expect(report.first_refusal_ms).toBeLessThan(1000);
    // Check the audit ourselves.
    const d = new Database(db, { readonly: true });
    const engaged = d
      .prepare("SELECT ts FROM audit WHERE event = 'killswitch.engaged' ORDER BY seq DESC LIMIT 1")
      .get() as { ts: number };
    const resumed = d
      .prepare("SELECT ts FROM audit WHERE event = 'killswitch.resumed' ORDER BY seq DESC LIMIT 1")
      .get() as { ts: number };
    const outcomes = d.prepare("SELECT detail FROM audit WHERE event = 'call.outcome'").all() as { detail: string }[];
    // The switch is engaged once its transaction has committed (the report's engaged_at, a little after the
    // audit row's timestamp, which is taken inside the transaction).
    const committed = Date.parse(report.engaged_at);
    expect(committed).toBeGreaterThanOrEqual(engaged.ts);
    expect(committed - engaged.ts).toBeLessThan(1000);
    const startedAfter = outcomes
      .map((o) => (JSON.parse(o.detail) as { started_at: number }).started_at)
      .filter((t) => t > committed && t < resumed.ts);
    expect(startedAfter).toHaveLength(0);
    expect(report.executed_after_engagement).toBe(0);
    const refusals = (
      d
        .prepare(
          "SELECT count(*) AS n FROM audit WHERE event IN ('call.denied', 'call.outcome') AND code = 'KILL_SWITCH_ENGAGED' AND ts >= ? AND ts <= ?",
        )
        .get(engaged.ts, resumed.ts) as { n: number }
    ).n;
    expect(refusals).toBe(report.audit_refusals_after);
    expect(refusals).toBe(report.calls_refused_after);
    const drillRow = d.prepare("SELECT outcome, detail FROM audit WHERE event = 'drill'").get() as {
      outcome: string;
      detail: string;
    };
    expect(drillRow.outcome).toBe('pass');
    // The drill's load runs as its own principal: no real principal's budget or breaker is spent.
    const actors = d
      .prepare("SELECT DISTINCT actor FROM audit WHERE event IN ('call.outcome', 'call.denied')")
      .all() as { actor: string }[];
    expect(actors.map((a) => a.actor)).toEqual(['itguard-drill']);
    d.close();
    const budgets = JSON.parse(runCli(['budgets', '--json', '--db', db]).stdout) as {
      budgets: { usage: { key: string }[] }[];
    };
    expect(budgets.budgets.flatMap((b) => b.usage.map((u) => u.key)).filter((k) => k !== 'itguard-drill')).toEqual([]);
    expect(runCli(['status', '--db', db]).stdout).toMatch(/last drill: {2}PASS/);
    expect(runCli(['audit', 'verify', '--db', db]).code).toBe(0);
    tmp.cleanup();
  }, 60_000);
});
