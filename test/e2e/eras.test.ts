/**
 * Both protocol eras over both transports, with the v2 SDK client: 2025-11-25 (`versionNegotiation: legacy`, a plain
 * initialize) and 2026-07-28 (pinned: server/discover, a `_meta` envelope on every request), against the built
 * `serve --stdio` and `serve --http`. The same scenario runs in all four: search, create, replay with the same key,
 * refusal shapes, confirm, MFA and an approver's decision. The outcomes are the same: a 2025-11-25 client is asked
 * by pushed elicitation, a 2026-07-28 client by `input_required` results it answers by retrying (MRTR); only the
 * bounds differ, since 2026-07-28 has no session and only the principal-level bounds apply.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { MfaStore } from '../../src/store/sqlite/mfa-store.js';
import { openDb } from '../../src/store/sqlite/db.js';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { count, seedDb, until, writePolicy, type ErrorMeta } from '../helpers/planner.js';
import { demoPolicy, type PolicyBuilder } from '../helpers/policy-builder.js';
import { ERAS, v2Http, v2Stdio, type EraName, type V2Options, type V2Planner } from '../helpers/v2-clients.js';

type TransportName = 'stdio' | 'http';
const TRANSPORTS: readonly TransportName[] = ['stdio', 'http'];

let tmp: ReturnType<typeof tempDir>;
let n = 0;
const servers: Served[] = [];
const open: V2Planner[] = [];
beforeAll(() => {
  tmp = tempDir();
});
afterAll(async () => {
  for (const p of open.splice(0)) await p.close().catch(() => undefined);
  for (const s of servers.splice(0)) await s.stop();
  tmp.cleanup();
});

const reason = 'the user asked in chat';
const data = (r: CallToolResult) => r.structuredContent as Record<string, unknown> | undefined;
const errOf = (r: CallToolResult) => r._meta?.['itguard/error'] as ErrorMeta | undefined;
const codeOf = (r: CallToolResult) => errOf(r)?.code;

/** A fresh database and policy, and a way to connect to it as a principal over one transport in one era. */
async function setup(transport: TransportName, base: PolicyBuilder = demoPolicy()) {
  const name = `e${n++}`;
  const db = join(tmp.dir, `${name}.db`);
  const policy = writePolicy(tmp.dir, name, base);
  // Over stdio the principal is the policy's stdio_principal: one policy file per principal.
  const policyAs = (p: string) =>
    p === 'helpdesk-agent' ? policy : writePolicy(tmp.dir, `${name}-${p}`, base.clone().set('stdio_principal', p));
  const tokens = seedDb(db, policy, ['helpdesk-agent', 'kb-reader']);
  let served: Served | undefined;
  if (transport === 'http') {
    served = await serveHttp(db, ['--policy', policy]);
    servers.push(served);
  }
  const connect = async (era: EraName, o: V2Options = {}, principal = 'helpdesk-agent') => {
    const p =
      transport === 'http'
        ? await v2Http(era, served!.url, tokens[principal]!, o)
        : await v2Stdio(era, db, policyAs(principal), o);
    open.push(p);
    expect(p.client.getProtocolEra()).toBe(era);
    expect(p.client.getNegotiatedProtocolVersion()).toBe(era === 'modern' ? '2026-07-28' : '2025-11-25');
    return p;
  };
  return { db, policy, connect };
}

/** The current TOTP code of a demo user, read from the database as their authenticator app would compute it. */
function totp(db: string, user: string): string {
  const d = openDb(db);
  try {
    return new MfaStore(d).currentCode(user)!;
  } finally {
    d.close();
  }
}

const statusOf = async (p: V2Planner, id: string) =>
  data(await p.call('request_status', { request_id: id }))?.status as string | undefined;
const waitStatus = (p: V2Planner, id: string, want: string) =>
  until(`${id} ${want}`, 15_000, async () => ((await statusOf(p, id)) === want ? true : undefined), 200);

/** What the scenario saw, in a form the four runs can be compared by. */
interface Outcome {
  tools: string[];
  readerTools: string[];
  search: boolean;
  created: string;
  replay: { key: string; marked: boolean };
  refusals: Record<'scope' | 'invalid' | 'unknown', string | undefined>;
  confirm: { first: string; asked: number; final: string };
  mfa: { first: string; asked: number; resetMailed: number; mustChange: number };
  approval: { first: string; progress: number; final: string };
  elicitedTotal: number;
}
const outcomes = new Map<string, Outcome>();

describe.each(TRANSPORTS)('over %s', (transport) => {
  describe.each(ERAS)('%s era (v2 client)', (era) => {
    it('search, create, replay, refusal shapes, confirm, MFA and approval', async () => {
      const { db, policy, connect } = await setup(transport, demoPolicy().approvals({ wait_seconds: 2 }));
      const p = await connect(era, {
        modes: ['form'],
        respond: (q) => {
          const props = (q as { requestedSchema?: { properties?: Record<string, unknown> } }).requestedSchema
            ?.properties;
          const content: Record<string, string | boolean> =
            props && 'code' in props ? { code: totp(db, 'jdoe') } : { approve: true };
          return { action: 'accept', content };
        },
      });
      const o = {} as Outcome;

      // tools/list varies with the principal only; the era does not change it.
      o.tools = (await p.client.listTools()).tools.map((t) => t.name).sort();
      const reader = await connect(era, {}, 'kb-reader');
      o.readerTools = (await reader.client.listTools()).tools.map((t) => t.name).sort();

      const search = await p.call('kb_search', { query: 'vpn' });
      o.search = !search.isError && Array.isArray(data(search)?.results);

      const args = { summary: 'VPN drops every hour', requester: 'jdoe', reason, idempotency_key: 'eras-key-0001' };
      const created = await p.call('ticket_create', args);
      expect(created.isError).toBeFalsy();
      o.created = String(data(created)?.key);
      const again = await p.call('ticket_create', args);
      o.replay = { key: String(data(again)?.key), marked: again._meta?.['itguard/replay'] !== undefined };

      // Refusals are tool results with the code in _meta, on both eras.
      const scope = await reader.call('ticket_create', { ...args, idempotency_key: 'eras-key-0002' });
      const invalid = await p.call('kb_search', { query: '' });
      const unknown = await p.call('no_such_tool', {});
      for (const r of [scope, invalid, unknown]) {
        expect(r.isError).toBe(true);
        expect(errOf(r)?.trace_id).toMatch(/^[\w-]{16}$/);
      }
      expect(errOf(invalid)?.fields).toBeDefined();
      o.refusals = { scope: codeOf(scope), invalid: codeOf(invalid), unknown: codeOf(unknown) };

      // confirm (a self-service install): legacy asks in a form; modern escalates to an approver.
      const confirm = await p.call('software_install', { user: 'jdoe', package: 'vscode', reason });
      const askedAfterConfirm = p.asked.length;
      o.confirm = { first: codeOf(confirm) ?? 'ok', asked: askedAfterConfirm, final: 'ok' };
      if (codeOf(confirm) === 'APPROVAL_PENDING') {
        const id = String(errOf(confirm)!.request_id);
        expect(runCli(['approvals', 'approve', id, '--db', db, '--policy', policy]).code).toBe(0);
        o.confirm.final = await waitStatus(p, id, 'succeeded').then(() => 'succeeded');
      }

      // mfa (password_reset): legacy asks for the code in a form; modern gets the one-time page link.
      const mfa = await p.call('password_reset', { user: 'jdoe', reason });
      o.mfa = { first: codeOf(mfa) ?? 'ok', asked: p.asked.length - askedAfterConfirm, resetMailed: 0, mustChange: 0 };
      if (codeOf(mfa) === 'APPROVAL_PENDING') {
        const meta = errOf(mfa)!;
        const link = String(meta.verification_link);
        expect(link).toMatch(/\/verify\/[\w-]+$/);
        const page = await fetch(link);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain('Code from your authenticator app');
        const posted = await fetch(link, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ code: totp(db, 'jdoe'), decision: 'confirm' }),
        });
        expect(posted.status).toBe(200);
        await waitStatus(p, String(meta.request_id), 'succeeded');
      }
      o.mfa.resetMailed = count(db, "SELECT count(*) AS n FROM outbox WHERE subject LIKE '%password reset%'");
      o.mfa.mustChange = count(db, "SELECT must_change_password AS n FROM dir_users WHERE username = 'jdoe'");

      // approval (a licensed package): waits with progress, APPROVAL_PENDING, approved by the CLI, then runs.
      let progress = 0;
      const pending = await p.call('software_install', { user: 'jdoe', package: 'figma', reason }, () => progress++);
      o.approval = { first: codeOf(pending) ?? 'ok', progress, final: '' };
      const id = String(errOf(pending)!.request_id);
      expect(await statusOf(p, id)).toBe('pending');
      expect(runCli(['approvals', 'approve', id, '--db', db, '--policy', policy]).code).toBe(0);
      await waitStatus(p, id, 'succeeded');
      o.approval.final = 'succeeded';
      o.elicitedTotal = p.asked.length;

      outcomes.set(`${transport}/${era}`, o);
      await p.close();
      await reader.close();
    });
  });
});

describe('the four runs', () => {
  it('give the same outcomes (in band: pushed elicitation on 2025-11-25, input_required on 2026-07-28)', () => {
    expect([...outcomes.keys()].sort()).toEqual(['http/legacy', 'http/modern', 'stdio/legacy', 'stdio/modern']);
    for (const [run, o] of outcomes) {
      expect(o.tools, run).toEqual([
        'guard_status',
        'kb_get_article',
        'kb_search',
        'password_reset',
        'request_status',
        'software_catalog',
        'software_install',
        'ticket_comment',
        'ticket_create',
        'ticket_get',
        'ticket_search',
      ]);
      expect(o.readerTools, run).toEqual([
        'guard_status',
        'kb_get_article',
        'kb_search',
        'ticket_get',
        'ticket_search',
      ]);
      expect(o.search, run).toBe(true);
      expect(o.created, run).toBe('IT-1');
      expect(o.replay, run).toEqual({ key: 'IT-1', marked: true });
      expect(o.refusals, run).toEqual({ scope: 'SCOPE_DENIED', invalid: 'INVALID_ARGUMENT', unknown: 'UNKNOWN_TOOL' });
      // confirm and mfa: one form each, answered in band, whichever way the era carries it.
      expect(o.confirm, run).toEqual({ first: 'ok', asked: 1, final: 'ok' });
      expect(o.mfa, run).toEqual({ first: 'ok', asked: 1, resetMailed: 1, mustChange: 1 });
      expect(o.approval.first, run).toBe('APPROVAL_PENDING');
      // Progress while waiting goes out on both eras; over stdio the last one may trail the result, so only "some".
      expect(o.approval.progress, run).toBeGreaterThan(0);
      expect(o.approval.final, run).toBe('succeeded');
      expect(o.elicitedTotal, run).toBe(2);
    }
  });
});

/**
 * Bounds per era (docs/architecture.md, "Bounds per protocol era"): every bound lives in the store, per task. A
 * 2025-11-25 session and a stdio connection (either era) identify a task; a 2026-07-28 HTTP request without a task
 * id falls back to the OAuth user, else the principal (as here, with static tokens), so its bounds are the
 * principal-wide task's. Either way the same rules apply on both eras.
 */
describe.each(TRANSPORTS)('bounds per era over %s', (transport) => {
  const bounded = () =>
    demoPolicy()
      .task({ max_calls: 3, max_identical_calls: 2 })
      .cap('ticket_create', { name: 'tickets-per-requester', window: 'hour', per: 'requester', limit: 50 })
      .cap('ticket_create', { name: 'tickets-per-task', window: 'hour', per: 'task', limit: 1 });
  const codes = (rs: CallToolResult[]) => rs.map((r) => (r.isError ? `${codeOf(r)}:${String(errOf(r)?.level)}` : 'ok'));
  const run = async (p: V2Planner, calls: [string, Record<string, unknown>][]) => {
    const out: CallToolResult[] = [];
    for (const [name, args] of calls) out.push(await p.call(name, args));
    return out;
  };
  /** How a 2026-07-28 connection over this transport is identified when it sends no task id. */
  const modernSource = transport === 'stdio' ? 'session' : 'principal';

  it('identical calls: max_identical_calls per task on both eras', async () => {
    const vpn: [string, Record<string, unknown>] = ['kb_search', { query: 'vpn' }];
    for (const era of ERAS) {
      const p = await (await setup(transport, bounded())).connect(era);
      expect(codes(await run(p, [vpn, vpn, vpn]))).toEqual(['ok', 'ok', 'LOOP_DETECTED:task']);
    }
  }, 90_000);

  it('call counts: task.max_calls on both eras; guard_status names the task and how it was identified', async () => {
    const q = (i: number): [string, Record<string, unknown>] => ['kb_search', { query: `printer ${i}` }];
    for (const era of ERAS) {
      const p = await (await setup(transport, bounded())).connect(era);
      expect(codes(await run(p, [q(1), q(2), q(3), q(4)]))).toEqual(['ok', 'ok', 'ok', 'BUDGET_EXHAUSTED:task']);
      const t = data(await p.call('guard_status'))?.task as Record<string, unknown>;
      expect(t).toMatchObject({
        calls_used: 3,
        calls_left: 0,
        identified_by: era === 'legacy' ? 'session' : modernSource,
      });
    }
  }, 90_000);

  it('a per-task cap: per session on 2025-11-25; on 2026-07-28 per connection over stdio, per principal over HTTP without a task id', async () => {
    const ticket = (i: number): [string, Record<string, unknown>] => [
      'ticket_create',
      { summary: `Monitor flickers ${i}`, requester: 'jdoe', reason },
    ];
    const l = await setup(transport, bounded());
    const a = await l.connect('legacy');
    const b = await l.connect('legacy');
    expect(codes(await run(a, [ticket(1), ticket(2)]))).toEqual(['ok', 'CAP_EXCEEDED:undefined']);
    expect(codes(await run(b, [ticket(3)]))).toEqual(['ok']); // a new session: a new task

    const m = await setup(transport, bounded());
    const c = await m.connect('modern');
    const d = await m.connect('modern');
    expect(codes(await run(c, [ticket(1)]))).toEqual(['ok']);
    const second = await run(d, [ticket(2)]);
    if (transport === 'stdio') expect(codes(second)).toEqual(['ok']);
    else {
      // No task id, no OAuth user: both connections are the principal's one task.
      expect(codes(second)).toEqual(['CAP_EXCEEDED:undefined']);
      expect(errOf(second[0]!)).toMatchObject({ rule: 'tickets-per-task', per: 'task' });
    }
  }, 90_000);
});
