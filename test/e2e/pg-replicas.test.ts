/**
 * Three replicas on one PostgreSQL (issue 20, DESIGN §6 "Replicas", §9): three `itguard serve --http` processes of
 * the built CLI with `store: { kind: postgres }`, one real PostgreSQL 15 started by the suite, and 2026-07-28
 * clients spread over the replicas as a balancer would. Every bound is checked against the database itself:
 *  - caps exact under a concurrent storm, in a loop;
 *  - a principal budget and a task's own bound exact when the task's calls land on every replica;
 *  - one idempotency key sent to all three at once makes one effect;
 *  - `itguard kill` stops every replica within a second, and no effect starts after the switch;
 *  - kill -9 of a replica in the middle of writes, then the same keys retried on the others: no duplicate, and the
 *    audit chain (written by all three) verifies.
 */
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { codeOf, until } from '../helpers/planner.js';
import { loadPolicy } from '../helpers/policy-file.js';
import { startPg, type Pg } from '../helpers/pg.js';
import { v2Http, v2Task, type V2Planner } from '../helpers/v2-clients.js';

const REPLICAS = ['r1', 'r2', 'r3'] as const;
const STORM = ['obennett', 'dkim', 'pnair', 'mrossi', 'cokafor', 'sjohansson', 'tnguyen', 'ealvarez'];
const AUDIT_KEY = 'cd'.repeat(32);

let pg: Pg;
let url: string;
let sql: postgres.Sql;
let tmp: ReturnType<typeof tempDir>;
let policy: string;
let env: Record<string, string>;
let replicas: Served[] = [];
let token: string;

async function startReplica(id: string): Promise<Served> {
  // --db is not used with a PostgreSQL store: a path that does not exist proves it.
  return serveHttp(join(tmp.dir, 'unused', `${id}.db`), ['--policy', policy], { ...env, ITGUARD_REPLICA_ID: id });
}

beforeAll(async () => {
  pg = await startPg({ database: 'replicas' });
  url = pg.url;
  sql = postgres(url, { max: 2, onnotice: () => {} });
  tmp = tempDir();
  policy = loadPolicy([
    { name: 'tickets-per-requester', window: 'day', per: 'requester', limit: 11 },
    { name: 'tickets-per-day', window: 'day', limit: 100000 },
  ])
    .budgets([{ name: 'kb-per-hour', window: 'hour', limit: 40, tools: ['kb_search'] }])
    .tool('ticket_get', { tier: 'auto', max_identical_calls: 4 })
    .edit((d) => {
      d.store = { kind: 'postgres', url_env: 'ITGUARD_PG_URL' };
      d.demo = true;
    })
    .write(tmp.dir);
  env = { ITGUARD_PG_URL: url, ITGUARD_AUDIT_KEY: AUDIT_KEY };
  // All three start at once: the migrations run once under the advisory lock, the demo is seeded once.
  replicas = await Promise.all(REPLICAS.map((id) => startReplica(id)));
  const made = runCli(['token', 'create', '--principal', 'helpdesk-agent', '--policy', policy], env);
  expect(made.code, made.stderr).toBe(0);
  token = made.stdout.trim();
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await sql?.end({ timeout: 1 });
  await pg?.stop();
  tmp?.cleanup();
});

const tickets = async (requester?: string): Promise<number> => {
  const [r] = requester
    ? await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tickets WHERE requester = ${requester}`
    : await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM tickets`;
  return r!.n;
};

/** One 2026-07-28 client per replica (a balancer spreads stateless requests: each call goes to any of them). */
async function clients(): Promise<V2Planner[]> {
  return Promise.all(replicas.map((r) => v2Http('modern', r.url, token)));
}

const closeAll = (cs: V2Planner[]) => Promise.all(cs.map((c) => c.close()));

describe('three replicas on one PostgreSQL', () => {
  it('schema migrated once, demo seeded once, every replica serving', async () => {
    const [m] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM schema_migrations`;
    expect(m!.n).toBeGreaterThan(0);
    const [u] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM dir_users WHERE username = 'jdoe'`;
    expect(u!.n).toBe(1);
    for (const r of replicas) {
      const h = (await (await fetch(r.url.replace(/\/mcp$/, '/healthz'))).json()) as Record<string, unknown>;
      expect(h.status).toBe('ok');
    }
  });

  it('a per-requester cap admits exactly its limit under a storm spread over the replicas, every round', async () => {
    const cs = await clients();
    try {
      for (let round = 0; round < 3; round++) {
        const requester = ['jdoe', 'asmith', 'wzhang'][round]!;
        const results = await Promise.all(
          Array.from({ length: 45 }, (_, i) =>
            cs[i % cs.length]!.call('ticket_create', {
              summary: `storm ${round} #${i}`,
              requester,
              reason: 'cap storm',
            }),
          ),
        );
        const ok = results.filter((r) => !r.isError).length;
        const capped = results.filter((r) => codeOf(r) === 'CAP_EXCEEDED').length;
        expect({ round, ok, capped }).toEqual({ round, ok: 11, capped: 34 });
        expect(await tickets(requester)).toBe(11);
      }
    } finally {
      await closeAll(cs);
    }
  }, 120_000);

  it("a principal budget and a task's own bound are exact across replicas", async () => {
    const cs = await clients();
    try {
      const results = await Promise.all(
        Array.from({ length: 90 }, (_, i) => cs[i % cs.length]!.call('kb_search', { query: `vpn ${i}` })),
      );
      const ok = results.filter((r) => !r.isError).length;
      expect(ok).toBe(40);
      expect(results.filter((r) => codeOf(r) === 'BUDGET_EXHAUSTED').length).toBe(50);
    } finally {
      await closeAll(cs);
    }
    // A task's calls reach every replica (one planner per replica, the same task id): its loop bound holds as it
    // does when all of them reach one replica, and every call counts once in the task.
    const okOf = async (task: string, spread: boolean) => {
      const ps = await Promise.all(replicas.map((r) => v2Task('modern', r.url, token, task, 'meta')));
      try {
        const rs = await Promise.all(
          Array.from({ length: 30 }, (_, i) => ps[spread ? i % 3 : 1]!.call('ticket_get', { key: 'IT-1' })),
        );
        return {
          ok: rs.filter((r) => codeOf(r) !== 'LOOP_DETECTED' && codeOf(r) !== 'BUDGET_EXHAUSTED').length,
          refused: rs.filter((r) => codeOf(r) === 'LOOP_DETECTED' || codeOf(r) === 'BUDGET_EXHAUSTED').length,
        };
      } finally {
        await Promise.all(ps.map((p) => p.close()));
      }
    };
    const one = await okOf('task-one-replica', false);
    const three = await okOf('task-three-replicas', true);
    expect(one.ok).toBe(4);
    expect(three).toEqual(one);
    const rows = await sql<{ id: string; calls: number }[]>`SELECT id, calls FROM tasks WHERE id LIKE 'task-%'`;
    // Each task's counter holds what was admitted, the same whichever replicas the calls reached.
    const calls = Object.fromEntries(rows.map((r) => [r.id, r.calls]));
    expect(calls['task-three-replicas']).toBe(calls['task-one-replica']);
  }, 120_000);

  it('one idempotency key sent to all three replicas at once makes one ticket', async () => {
    const cs = await clients();
    try {
      for (let round = 0; round < 3; round++) {
        const key = `replica-key-${round}-${Date.now()}`;
        const before = await tickets();
        const rs = await Promise.all(
          cs.flatMap((c) =>
            [0, 1].map(() =>
              c.call('ticket_create', {
                summary: `one effect ${round}`,
                requester: 'cmurphy',
                reason: 'idempotency across replicas',
                idempotency_key: key,
              }),
            ),
          ),
        );
        const keys = new Set(rs.filter((r) => !r.isError).map((r) => (r.structuredContent as { key?: string })?.key));
        expect(keys.size).toBeLessThanOrEqual(1);
        expect(await tickets()).toBe(before + 1);
      }
    } finally {
      await closeAll(cs);
    }
  }, 120_000);

  it('kill stops every replica within a second, and no effect starts after it; resume reopens them', async () => {
    const cs = await clients();
    let storming = true;
    const storm = (async () => {
      const out: CallToolResult[] = [];
      for (let i = 0; storming; i++)
        out.push(
          await cs[i % 3]!.call('ticket_create', {
            summary: `kill storm ${i}`,
            requester: STORM[i % STORM.length]!,
            reason: 'kill',
          }),
        );
      return out;
    })();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const killed = runCli(['kill', '--reason', 'replica drill', '--policy', policy], env);
      expect(killed.code, killed.stderr).toBe(0);
      const at = Date.now();
      // Every replica refuses within a second of the switch being set.
      await Promise.all(
        cs.map((c) =>
          until('replica refuses', 1000, async () =>
            codeOf(await c.call('kb_search', { query: 'printer' })) === 'KILL_SWITCH_ENGAGED' ? true : undefined,
          ),
        ),
      );
      expect(Date.now() - at).toBeLessThan(1500);
      storming = false;
      await storm;
      // No effect after the switch: every ticket_create intent of the storm precedes the kill's audit record.
      const [k] = await sql<
        { seq: number }[]
      >`SELECT max(seq)::int AS seq FROM audit WHERE event = 'killswitch.engaged'`;
      const late = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM audit WHERE event = 'call.intent' AND tool = 'ticket_create' AND seq > ${k!.seq}`;
      expect(late[0]!.n).toBe(0);
    } finally {
      storming = false;
      await storm.catch(() => undefined);
      expect(runCli(['resume', '--reason', 'drill over', '--policy', policy], env).code).toBe(0);
      await until('replicas serve again', 3000, async () =>
        (await Promise.all(cs.map((c) => c.call('kb_search', { query: 'vpn' })))).every(
          (r) => codeOf(r) !== 'KILL_SWITCH_ENGAGED',
        )
          ? true
          : undefined,
      );
      await closeAll(cs);
    }
  }, 120_000);

  it.each(['after-effect', 'before-effect'] as const)(
    'kill -9 of a replica stalled %s, then the same keys on the others: one effect each, and the audit verifies',
    async (failpoint) => {
      // A fourth replica whose every write stalls at the failpoint (ITGUARD_FAILPOINT), killed while they stall.
      const victim = await serveHttp(join(tmp.dir, 'unused', 'victim.db'), ['--policy', policy], {
        ...env,
        ITGUARD_REPLICA_ID: `victim-${failpoint}`,
        ITGUARD_FAILPOINT: failpoint,
      });
      const onVictim = await v2Http('modern', victim.url, token);
      const cs = await clients();
      const requester = failpoint === 'after-effect' ? 'tbrown' : 'ahassan';
      const keys = Array.from({ length: 6 }, (_, i) => `crash-${failpoint}-${i}-${Date.now()}`);
      const args = (k: string) => ({ summary: `crash ${k}`, requester, reason: 'crash', idempotency_key: k });
      const before = await tickets(requester);
      try {
        const inflight = keys.map((k) => onVictim.call('ticket_create', args(k)).catch(() => undefined));
        // Every call has reached its failpoint: its intent is in the audit, and (after-effect) its ticket exists.
        await until('the victim stalls every call', 10_000, async () => {
          const [r] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM audit
            WHERE event = 'call.intent' AND detail::jsonb->>'idempotency_key' LIKE ${`%crash-${failpoint}-%`}`;
          const effects = (await tickets(requester)) - before;
          return r!.n >= keys.length && (failpoint === 'before-effect' || effects >= keys.length) ? true : undefined;
        });
        // Stalled a moment longer: nothing more happens while they wait at the failpoint.
        await new Promise((r) => setTimeout(r, 300));
        const effectsAtKill = (await tickets(requester)) - before;
        expect(effectsAtKill).toBe(failpoint === 'after-effect' ? keys.length : 0);
        victim.proc.kill('SIGKILL');
        await Promise.all(inflight);
        // The same keys on the survivors: IN_PROGRESS while the dead replica's holds last (15 s), then each
        // recovered (after-effect: the backend has it) or run again (before-effect: nothing was sent).
        const finals: Record<string, string> = {};
        await Promise.all(
          keys.map((k, i) =>
            until(
              `retry ${k}`,
              60_000,
              async () => {
                const r = await cs[i % 3]!.call('ticket_create', args(k));
                const e = r._meta?.['itguard/error'] as { code: string; retryable?: boolean } | undefined;
                if (e && (e.code === 'IN_PROGRESS' || e.retryable)) return undefined;
                finals[k] = e?.code ?? 'ok';
                return true;
              },
              500,
            ),
          ),
        );
        expect(Object.values(finals).filter((c) => c !== 'ok')).toEqual([]);
        const rows = await sql<{ summary: string; n: number }[]>`
          SELECT summary, count(*)::int AS n FROM tickets WHERE requester = ${requester} GROUP BY summary`;
        expect(rows.filter((r) => r.n > 1)).toEqual([]);
        expect((await tickets(requester)) - before).toBe(keys.length);
      } finally {
        await onVictim.close().catch(() => undefined);
        if (victim.proc.exitCode === null) victim.proc.kill('SIGKILL');
        await closeAll(cs);
      }
      const verify = runCli(['audit', 'verify', '--policy', policy], env);
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    },
    120_000,
  );
});
