/**
 * Hostile arguments through a real client: control characters in `reason` are refused at validation, and
 * arguments nested thousands of levels deep are refused (not a crash) with the denial still in the audit.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openApp, type SqliteApp as App } from '../../src/app.js';
import { runCli } from '../helpers/cli.js';
import { codeOf, connect, silent, tempDir, textOf } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';

let tmp: ReturnType<typeof tempDir>;
let app: App;
let db: string;
let c: Awaited<ReturnType<typeof connect>>;
beforeAll(() => {
  tmp = tempDir();
  db = join(tmp.dir, 'h.db');
  // The principal's loop breaker is not under test here: a refusal per case must not trip it.
  app = openApp({
    dbPath: db,
    policy: demoPolicy().loop({ identical_per_hour: 1000, failures_in_a_row: 1000 }).parse(),
    log: silent,
  });
});
// A fresh MCP session per test: refusals count toward the session's loop breaker.
beforeEach(async () => {
  c = await connect(app);
});
afterAll(() => {
  app.close();
  tmp.cleanup();
});

const traceOf = (r: Awaited<ReturnType<typeof c.call>>) =>
  (r._meta?.['itguard/error'] as { trace_id: string }).trace_id;
const fields = (r: Awaited<ReturnType<typeof c.call>>) =>
  (r._meta?.['itguard/error'] as { fields?: string[] }).fields ?? [];

describe('reason', () => {
  it('refuses C0 and C1 control characters, naming the field and the rule; nothing is created', async () => {
    const before = app.sqlite.auditStore.count("event = 'call.intent'");
    // Distinct summaries: the same action with only another reason is an identical call to the loop breaker.
    for (const [i, reason] of ['\u001b[2J\u001b[31mAPPROVED', 'ok\u009b2J', 'ok\rfake', 'nul\u0000'].entries()) {
      const r = await c.call('ticket_create', { summary: `VPN down ${i}`, requester: 'jdoe', reason });
      expect(codeOf(r)).toBe('INVALID_ARGUMENT');
      expect(fields(r)).toEqual([
        'reason: must not contain control characters (U+0000–U+001F except tab and newline, U+007F–U+009F)',
      ]);
      expect(textOf(r)).toMatch(/reason: must not contain control characters/);
    }
    expect(app.sqlite.auditStore.count("event = 'call.intent'")).toBe(before);
  });

  it('accepts tabs and newlines', async () => {
    const r = await c.call('ticket_create', {
      summary: 'VPN down',
      requester: 'jdoe',
      reason: 'user says:\n\tVPN drops',
    });
    expect(r.isError).toBeFalsy();
  });
});

describe('arguments nested 10,000 levels deep', () => {
  const deep = (depth: number, wrap: (v: unknown) => unknown): unknown => {
    let v: unknown = 'x';
    for (let i = 0; i < depth; i++) v = wrap(v);
    return v;
  };

  it('are refused, the denial is audited with the size and hash of the arguments, and the chain verifies', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['ticket_create', { summary: 's', requester: 'jdoe', reason: 'r', extra: deep(10_000, (v) => ({ a: v })) }],
      ['ticket_create', { summary: deep(10_000, (v) => [v]), requester: 'jdoe', reason: 'r' }],
      ['kb_search', deep(10_000, (v) => ({ password: 'hunter2', a: v })) as Record<string, unknown>],
    ];
    for (const [tool, args] of cases) {
      const r = await c.call(tool, args);
      expect(codeOf(r)).toBe('INVALID_ARGUMENT');
      const rows = app.sqlite.auditStore.byTrace(traceOf(r));
      expect(rows.map((x) => [x.event, x.code])).toEqual([['call.denied', 'INVALID_ARGUMENT']]);
      const stored = JSON.parse(rows[0]!.args!) as Record<string, unknown>;
      expect(stored).toMatchObject({
        truncated: true,
        why: 'too deep',
        max_depth: expect.any(Number),
        chars: expect.any(Number),
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
      expect(rows[0]!.args).not.toContain('hunter2');
    }
    // The session still works, and the chain holds.
    expect((await c.call('kb_search', { query: 'vpn' })).isError).toBeFalsy();
    expect(app.sqlite.auditStore.verify().ok).toBe(true);
    const v = runCli(['audit', 'verify', '--db', db]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/audit chain OK/);
  });
});
