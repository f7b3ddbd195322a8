/**
 * Crash loop (issue 11, DESIGN §9 "Nothing is lost"): real `serve --stdio` and `serve --http` processes on one
 * database drive concurrent writes of every write tool (ticket_create, ticket_comment, password_reset,
 * software_install, all at tier auto so no human is needed) with explicit idempotency keys, and are killed with
 * SIGKILL — at a seeded random moment, or while stalled at ITGUARD_FAILPOINT=before-effect|after-effect. Fresh
 * processes retry every call with the same keys; after the crash rounds a clean round retries until every key
 * has a final answer. Everything is judged from the system's own records:
 *
 * - no duplicate side effect: each key (its `idempotency` row) has at most one effect row (tickets,
 *   ticket_comments, outbox, install_jobs, matched by request_id), every effect row belongs to one key's record,
 *   and a key answered ok has exactly one, a key refused by a cap none;
 * - every executed effect has its audit intent and an outcome (src/guard/audit.ts): an intent is a
 *   `call.intent` record whose detail.idempotency_key is the effect's request_id (the idempotency step puts the
 *   request id there before the audit step runs); an outcome is a `call.outcome` with outcome `ok` and the
 *   trace_id of one of those intents, or — when the process died between the effect and its outcome — the
 *   recovered record: a `call.replay` whose detail.original_trace_id is one of those intents' trace ids (the
 *   retry that found the effect through the tool's recover());
 * - caps never over-admit: every cap_usage row ≤ its rule's limit, and the effects counted per rule and scope
 *   ≤ the limit; the principal budget on software_catalog: budget_usage ≤ limit, and neither the audited nor the
 *   client-seen successes exceed it;
 * - `itguard audit verify` exits 0 after every round (a kill mid-write never breaks the chain).
 *
 * CRASH_ITERATIONS (default 3) databases, each with CRASH_ROUNDS (default 3) crash rounds; the kill kind rotates
 * (every three consecutive rounds have each), CRASH_SEED fixes the kill delays, which process dies first and which
 * transport each call takes (the servers' own timing still varies). The run also asserts that it reached the
 * windows it is about: effects found only by recovery, attempts killed before their effect and re-run, budget
 * refusals. The long run: `CRASH_ITERATIONS=200 npx vitest run test/crash`.
 *
 * Both stores (issue 20): everything above runs on a SQLite file and on a PostgreSQL database (one server for the
 * file, a fresh database per iteration; test/helpers/store-probe.ts), judged by the same queries. STORES=sqlite or
 * STORES=postgres runs one. On PostgreSQL a killed attempt's key is taken over only once its lease has ended
 * (DESIGN §5: liveness by lease, never by process id; a 15 s hold renewed while the process lives), so the clean
 * round first waits for the dead attempts' leases to end (store-probe.ts leasesEnded): an iteration takes ~20 s
 * there against ~5 s on SQLite (on a quiet machine). To keep the two runs comparable, PostgreSQL runs a third of
 * CRASH_ITERATIONS (at least 1: by default 1, whose three rounds have one kill of each kind and reach every window
 * asserted below); CRASH_PG_ITERATIONS sets it apart.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, serveHttp, type Served } from '../helpers/cli.js';
import { tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { codeOf, httpPlanner, stdioPlanner, until, writePolicy, type Planner, gone } from '../helpers/planner.js';
import {
  jsonOf,
  leasesEnded,
  onStore,
  storeHost,
  storesUnderTest,
  PG_HOLD_MS,
  type StoreKind,
  type TestDb,
} from '../helpers/store-probe.js';

const ITERATIONS = Number(process.env.CRASH_ITERATIONS ?? 3);
const PG_ITERATIONS = Number(process.env.CRASH_PG_ITERATIONS ?? Math.max(1, Math.round(ITERATIONS / 3)));
const iterationsOn = (store: StoreKind) => (store === 'postgres' ? PG_ITERATIONS : ITERATIONS);
/**
 * software_catalog calls per crash round, beside the writes: enough for the principal budget (catalog-calls) to
 * refuse some in a run. PostgreSQL runs fewer iterations and answers fewer of them before the kill (each admission
 * waits for the principal's budget rows, which every call of the round updates): twice the calls there.
 */
const CATALOG_CALLS: Record<StoreKind, number> = { sqlite: 8, postgres: 16 };
const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 3);
const DEBUG = !!process.env.CRASH_DEBUG;
const mark = (what: string) => DEBUG && console.log(`${new Date().toISOString().slice(11, 23)} ${what}`);
const SEED = Number(process.env.CRASH_SEED ?? 0x11c4a5);

/** mulberry32: a small seeded generator, so a failing run can be replayed with its CRASH_SEED. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!,
  };
}

/** Limits tight enough that every round asks for more than they allow. */
const LIMITS = {
  ticketsPerDay: 5,
  ticketsPerRequester: 3,
  // Room for every comment key: comments are the tool whose interrupted attempts get re-run most (the other caps
  // are full by then). A re-run is charged once (see 'a crash before the effect and a cap' below), so 4 would do;
  // the headroom keeps the re-run count from depending on that.
  commentsPerDay: 10,
  resetsPerDay: 3,
  resetsPerUser: 1,
  installsPerDay: 3,
  spendPerDay: 300,
  catalogCalls: 15,
} as const;

const POLICY = `version: 1
timezone: UTC
durability: strict
stdio_principal: helpdesk-agent
principals:
  helpdesk-agent: { scopes: [kb:read, tickets:read, tickets:write, password:reset, software:read, software:install] }
task: { max_calls: 10000, max_minutes: 30, max_result_bytes: 20000000, max_identical_calls: 100, max_consecutive_failures: 10000 }
approvals: { wait_seconds: 30, expire_hours: 24 }
tools:
  ticket_create:
    tier: auto
    caps:
      - { name: tickets-per-day, window: day, limit: ${LIMITS.ticketsPerDay} }
      - { name: tickets-per-requester, window: hour, per: requester, limit: ${LIMITS.ticketsPerRequester} }
  ticket_comment:
    tier: auto
    caps:
      - { name: comments-per-day, window: day, limit: ${LIMITS.commentsPerDay} }
  password_reset:
    tier: auto
    dedupe_window: 0
    caps:
      - { name: resets-per-day, window: day, limit: ${LIMITS.resetsPerDay} }
      - { name: resets-per-user, window: day, per: target, limit: ${LIMITS.resetsPerUser} }
  software_install:
    tier: auto
    self_service_tier: auto
    dedupe_window: 0
    caps:
      - { name: installs-per-day, window: day, limit: ${LIMITS.installsPerDay} }
      - { name: license-spend-per-day, window: day, measure: cost_usd, limit: ${LIMITS.spendPerDay} }
budgets:
  - { name: calls-per-hour, window: hour, limit: 100000 }
  - { name: failures-per-hour, window: hour, measure: failures, limit: 100000 }
  - { name: catalog-calls, window: hour, limit: ${LIMITS.catalogCalls}, tools: [software_catalog] }
loop: { tripped_tasks_per_hour: 10000 }
backends:
  tickets:   { kind: embedded, project: IT, allowed_projects: [IT] }
  directory: { kind: embedded }
  deploy:    { kind: embedded }
  outbox:    { kind: embedded }
demo: true
`;

type Tool = 'ticket_create' | 'ticket_comment' | 'password_reset' | 'software_install';
interface Job {
  key: string;
  tool: Tool;
  args: Record<string, unknown>;
}

/** The workload of one database: every write tool, more keys than the caps admit. */
function jobs(iter: number): Job[] {
  const k = (tool: string, i: number) => `crash-${iter}-${tool}-${i}`;
  const out: Job[] = [];
  for (let i = 0; i < 8; i++) {
    const requester = i % 2 ? 'dkim' : 'jdoe';
    out.push({
      key: k('tc', i),
      tool: 'ticket_create',
      args: { summary: `Crash loop ticket ${iter}/${i}`, requester, reason: 'crash loop' },
    });
  }
  for (let i = 0; i < 4; i++) {
    out.push({
      key: k('cm', i),
      tool: 'ticket_comment',
      args: { key: 'IT-1', body: `crash loop comment ${iter}/${i}`, reason: 'crash loop' },
    });
  }
  for (const [i, user] of ['pnair', 'mrossi', 'pnair', 'sjohansson', 'mrossi'].entries()) {
    out.push({ key: k('pr', i), tool: 'password_reset', args: { user, reason: 'crash loop' } });
  }
  for (const [i, [user, pkg]] of (
    [
      ['jdoe', 'slack'],
      ['jdoe', 'zoom'],
      ['jdoe', 'adobe-acrobat-pro'],
      ['pnair', 'slack'],
      ['pnair', 'adobe-acrobat-pro'],
    ] as const
  ).entries()) {
    out.push({ key: k('si', i), tool: 'software_install', args: { user, package: pkg, reason: 'crash loop' } });
  }
  return out.map((j) => ({ ...j, args: { ...j.args, idempotency_key: j.key } }));
}

const KINDS = ['before-effect', 'random', 'after-effect'] as const;
type Kill = (typeof KINDS)[number];
/**
 * The order of the kill kinds, and where each victim stalls. On PostgreSQL a key whose attempt was killed stays in
 * flight until its lease ends (up to 15 s after the kill), mostly past the iteration's next rounds (they answer it
 * IN_PROGRESS): a key mostly meets one kill per iteration. So there the failpoint rounds come first, while most keys
 * are fresh, the random round (which mostly settles keys) last, and in a failpoint round the HTTP victim stalls at
 * the other failpoint: every failpoint round reaches both windows (killed before the effect, after it) with fresh
 * keys.
 */
const KIND_ORDER: Record<StoreKind, readonly Kill[]> = {
  sqlite: KINDS,
  postgres: ['before-effect', 'after-effect', 'random'],
};
type Env = Record<string, string>;
function stalls(store: StoreKind, kind: Kill | 'none'): [stdio: Env, http: Env] {
  if (kind === 'random' || kind === 'none') return [{}, {}];
  const other = kind === 'before-effect' ? 'after-effect' : 'before-effect';
  return [{ ITGUARD_FAILPOINT: kind }, { ITGUARD_FAILPOINT: store === 'postgres' ? other : kind }];
}
interface Victims {
  stdio: Planner & { pid: number };
  http: Served;
  httpClient: Planner;
}

const settle = <T>(p: Promise<T>, ms: number): Promise<T | Error> =>
  Promise.race([
    p.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))),
    new Promise<Error>((r) => setTimeout(() => r(new Error('no answer')), ms).unref()),
  ]);
const intents = (t: TestDb) => t.count("SELECT count(*) AS n FROM audit WHERE event = 'call.intent'");

/** `itguard audit verify` of the database exits 0. */
const verify = (t: TestDb, policy: string, when: string) => {
  const v = runCli(['audit', 'verify', '--db', t.db, '--policy', policy], t.env);
  expect(v.code, `audit verify ${when}: ${v.stdout}${v.stderr}`).toBe(0);
};

describe.each(storesUnderTest())(
  'crash loop on %s: kill -9 during concurrent writes, restart, retry with the same keys',
  (store) => {
    const ITERATIONS = iterationsOn(store);
    let tmp: ReturnType<typeof tempDir>;
    const host = storeHost(store);
    const started: { stop: () => Promise<void> }[] = [];
    beforeAll(() => {
      tmp = tempDir();
    });
    afterAll(async () => {
      await Promise.all(started.map((s) => s.stop().catch(() => undefined)));
      await host.stop();
      tmp.cleanup();
    }, 30_000);

    async function servers(t: TestDb, policy: string, token: string, kind: Kill | 'none'): Promise<Victims> {
      const [atStdio, atHttp] = stalls(store, kind);
      const { db, env } = t;
      const [stdio, http] = await Promise.all([
        stdioPlanner(db, policy, { ...env, ...atStdio }),
        serveHttp(db, ['--policy', policy], { ...env, ...atHttp }),
      ]);
      // what afterAll stops if a round failed half-way: only processes still alive
      started.push(
        { stop: () => stdio.close() },
        { stop: async () => void (gone(http.proc.pid!) || (await http.stop())) },
      );
      const httpClient = await httpPlanner(http.url, token);
      return { stdio, http, httpClient };
    }

    it(
      `${ITERATIONS} databases × ${ROUNDS} crash rounds (seed ${SEED}): no duplicate effect, every effect audited, caps and budgets exact, audit verifies`,
      async () => {
        const r = rng(SEED);
        const t0 = Date.now();
        const kinds: Record<Kill, number> = { random: 0, 'before-effect': 0, 'after-effect': 0 };
        let catalogTotal = 0;
        const stats: Stats = {
          effects: 0,
          recovered: 0,
          rerun: 0,
          capped: 0,
          orphanIntents: 0,
          leaked: 0,
          budgetRefused: 0,
        };
        for (let iter = 0; iter < ITERATIONS; iter++) {
          const policy = writePolicy(tmp.dir, `crash-${iter}`, onStore(store, POLICY));
          const db = await host.fresh(tmp.dir, `crash-${iter}`);
          const token = (await db.seed(policy, ['helpdesk-agent']))['helpdesk-agent']!;
          const now = Date.now();
          await db.exec(
            "INSERT INTO tickets (key, project, number, summary, description, requester, priority, status, created_by, created_at, updated_at) VALUES ('IT-1', 'IT', 1, 'Base ticket for comments', '', 'jdoe', 'medium', 'open', 'setup', ?, ?)",
            now,
            now,
          );
          const work = jobs(iter);
          let catalogOk = 0;
          const fire = (v: Victims, job: Job) => (r.next() < 0.5 ? v.stdio : v.httpClient).call(job.tool, job.args);

          for (let round = 0; round < ROUNDS; round++) {
            // every kind in every window of three rounds, whatever the iteration count
            const kind = KIND_ORDER[store][(iter + round) % KINDS.length]!;
            kinds[kind]++;
            const v = await servers(db, policy, token, kind);
            mark(`round ${iter}/${round} ${kind}: servers up`);
            const before = await intents(db);
            let open = 0;
            const track = <T>(p: Promise<T>) => {
              open++;
              return p.finally(() => open--);
            };
            const calls = [
              ...r.pick([work, [...work].reverse()]).map((j) => track(settle(fire(v, j), 20_000))),
              ...Array.from({ length: CATALOG_CALLS[store] }, () =>
                track(
                  settle(
                    (r.next() < 0.5 ? v.stdio : v.httpClient).call('software_catalog', {}).then((x) => {
                      if (!x.isError) catalogOk++;
                      if (codeOf(x) === 'BUDGET_EXHAUSTED') stats.budgetRefused++;
                      return x;
                    }),
                    20_000,
                  ),
                ),
              ),
            ];
            if (kind === 'random') await new Promise((res) => setTimeout(res, r.int(1500)));
            else {
              // stalled at the failpoint: wait for the first intents (none come once every key is settled or
              // capped: those calls are answered without one), then a little more so more calls pile up
              await until(`an intent at ${kind}`, 10_000, async () =>
                (await intents(db)) > before || open === 0 ? true : undefined,
              );
              await new Promise((res) => setTimeout(res, 50 + r.int(250)));
            }
            mark('kill');
            const pids = [v.stdio.pid, v.http.proc.pid!];
            // the two processes die at slightly different moments
            process.kill(pids[r.int(2)]!, 'SIGKILL');
            await new Promise((res) => setTimeout(res, r.int(50)));
            for (const pid of pids) if (!gone(pid)) process.kill(pid, 'SIGKILL');
            await until('the victims to be gone', 5_000, () => (pids.every((p) => gone(p)) ? true : undefined));
            mark('gone');
            // Closing the clients ends their pending requests (an HTTP request cut mid-stream would otherwise wait
            // for the SDK's reconnection attempts).
            await Promise.all([v.stdio.close().catch(() => undefined), v.httpClient.close().catch(() => undefined)]);
            await Promise.all(calls);
            mark('calls settled');
            verify(db, policy, `after kill round ${iter}/${round} (${kind})`);
          }

          // The clean round: every key is retried until it has a final answer (on PostgreSQL, once the killed
          // attempts' leases have ended: before that their keys are IN_PROGRESS).
          if (store === 'postgres') await leasesEnded(db);
          const v = await servers(db, policy, token, 'none');
          const final = new Map<string, CallToolResult>();
          let pending = work;
          for (let attempt = 0; attempt < 4 && pending.length; attempt++) {
            const answers = await Promise.all(pending.map((j) => settle(fire(v, j), 20_000)));
            const again: Job[] = [];
            answers.forEach((a, i) => {
              const job = pending[i]!;
              if (a instanceof Error) throw new Error(`${job.key}: ${a.message}`);
              if (codeOf(a) === 'IN_PROGRESS') again.push(job);
              else final.set(job.key, a);
            });
            pending = again;
          }
          expect(
            pending.map((j) => j.key),
            'keys still in progress after the clean round',
          ).toEqual([]);
          await Promise.all([v.stdio.close(), v.httpClient.close()]);
          await v.http.stop();
          verify(db, policy, `after the clean round of ${iter}`);
          await check(db, work, final, catalogOk, stats);
          catalogTotal += catalogOk;
        }
        const secs = ((Date.now() - t0) / 1000).toFixed(1);
        console.log(
          `crash loop on ${store}: ${ITERATIONS} iterations × ${ROUNDS} rounds, kills ${JSON.stringify(kinds)}, ${JSON.stringify(stats)}, catalog ok ${catalogTotal}, ${secs} s, seed ${SEED}`,
        );
        // the loop must have reached the windows it is about, or it proves nothing
        expect(stats.effects).toBeGreaterThan(0);
        expect(stats.orphanIntents).toBeGreaterThan(0);
        expect(stats.recovered, 'no effect was found by a retry after a kill at after-effect').toBeGreaterThan(0);
        expect(stats.budgetRefused, 'the budget never refused a call').toBeGreaterThan(0);
        expect(stats.rerun, 'no attempt killed before its effect was run by a retry').toBeGreaterThan(0);
      },
      Math.max(60_000, ITERATIONS * (ROUNDS * 15_000 + (store === 'postgres' ? PG_HOLD_MS + 15_000 : 0))),
    );
  },
);

/** What the loop exercised, so a run that never hit the interesting windows shows it. */
interface Stats {
  effects: number;
  /** effects whose only outcome is the recovered record (the process died between effect and outcome) */
  recovered: number;
  /** effects of keys with several intents (an attempt died before its effect, a retry ran it) */
  rerun: number;
  capped: number;
  orphanIntents: number;
  /**
   * cap units counted beyond the effects (per global rule: cap_usage minus the effects it counts): reserved by
   * attempts that died before their effect and never given back. Always 0 once every key has a final answer: the
   * retry that adopts a dead attempt's records replaces its reservation (see the test at the end of this file).
   */
  leaked: number;
  /** software_catalog calls refused by the principal budget */
  budgetRefused: number;
}

interface Effect {
  request_id: string;
  created_at: number;
  scope: string;
  cost: number;
}
const EFFECTS: Record<Tool, string> = {
  ticket_create:
    'SELECT request_id, created_at, requester AS scope, 0 AS cost FROM tickets WHERE request_id IS NOT NULL',
  ticket_comment:
    'SELECT request_id, created_at, ticket_key AS scope, 0 AS cost FROM ticket_comments WHERE request_id IS NOT NULL',
  password_reset:
    'SELECT request_id, created_at, username AS scope, 0 AS cost FROM outbox WHERE request_id IS NOT NULL',
  software_install:
    'SELECT j.request_id, j.created_at, j.username AS scope, c.cost_usd AS cost FROM install_jobs j JOIN catalog c ON c.id = j.package',
};

/** The guarantees, from the database alone (plus what clients were answered). */
async function check(db: TestDb, work: Job[], final: Map<string, CallToolResult>, catalogOk: number, stats: Stats) {
  const byKey = new Map(
    (
      await db.query<{ key: string; request_id: string; state: string; tool: string }>(
        "SELECT key, request_id, state, tool FROM idempotency WHERE key LIKE 'k:%'",
      )
    ).map((row) => [row.key.slice(2), row]),
  );
  const audit = await db.query<{
    event: string;
    trace_id: string | null;
    tool: string | null;
    outcome: string | null;
    code: string | null;
    detail: unknown;
  }>('SELECT event, trace_id, tool, outcome, code, detail FROM audit');
  const detail = (a: { detail: unknown }) => jsonOf(a.detail);
  const intentTraces = new Map<string, Set<string>>();
  for (const a of audit.filter((x) => x.event === 'call.intent')) {
    const rid = String(detail(a).idempotency_key);
    if (!intentTraces.has(rid)) intentTraces.set(rid, new Set());
    intentTraces.get(rid)!.add(a.trace_id!);
  }
  const okTraces = new Set(
    audit.filter((a) => a.event === 'call.outcome' && a.outcome === 'ok').map((a) => a.trace_id),
  );
  const recoveredFrom = new Set(
    audit.filter((a) => a.event === 'call.replay').map((a) => String(detail(a).original_trace_id)),
  );

  for (const tool of Object.keys(EFFECTS) as Tool[]) {
    const effects = await db.query<Effect>(EFFECTS[tool]);
    const keysOfTool = work.filter((j) => j.tool === tool);
    const ridToKey = new Map(
      keysOfTool.flatMap((j) => (byKey.get(j.key) ? [[byKey.get(j.key)!.request_id, j.key]] : [])),
    );
    // No duplicate side effect: every effect belongs to one key's record, and no key has two.
    const seen = new Map<string, number>();
    for (const e of effects) {
      const key = ridToKey.get(e.request_id);
      expect(key, `${tool}: an effect (request ${e.request_id}) that no key's idempotency record names`).toBeDefined();
      seen.set(key!, (seen.get(key!) ?? 0) + 1);
      // Every executed effect has its intent, and an outcome or the recovered record.
      const traces = intentTraces.get(e.request_id);
      expect(traces?.size ?? 0, `${tool} ${key}: effect without an audit intent`).toBeGreaterThan(0);
      const answered = [...traces!].some((t) => okTraces.has(t) || recoveredFrom.has(t));
      expect(answered, `${tool} ${key}: effect without an outcome or recovered record`).toBe(true);
      stats.effects++;
      if (![...traces!].some((t) => okTraces.has(t))) stats.recovered++;
      if (traces!.size > 1) stats.rerun++;
    }
    for (const j of keysOfTool) {
      const n = seen.get(j.key) ?? 0;
      expect(n, `${j.key}: effects`).toBeLessThanOrEqual(1);
      const answer = final.get(j.key)!;
      const code = codeOf(answer);
      if (code) stats.capped++;
      expect([undefined, 'CAP_EXCEEDED'], `${j.key}: final answer ${JSON.stringify(answer)}`).toContain(code);
      expect(n, `${j.key}: answered ${code ?? 'ok'} but has ${n} effect(s)`).toBe(code ? 0 : 1);
      if (!code) expect(byKey.get(j.key)?.state, `${j.key}: idempotency state`).toBe('completed');
    }
    // Caps never over-admit: the effects themselves, counted per rule.
    const per = (xs: Effect[]) => {
      const n = new Map<string, number>();
      for (const e of xs) n.set(e.scope, (n.get(e.scope) ?? 0) + 1);
      return Math.max(0, ...n.values());
    };
    if (tool === 'ticket_create') {
      expect(effects.length).toBeLessThanOrEqual(LIMITS.ticketsPerDay);
      expect(per(effects)).toBeLessThanOrEqual(LIMITS.ticketsPerRequester);
    } else if (tool === 'ticket_comment') expect(effects.length).toBeLessThanOrEqual(LIMITS.commentsPerDay);
    else if (tool === 'password_reset') {
      expect(effects.length).toBeLessThanOrEqual(LIMITS.resetsPerDay);
      expect(per(effects)).toBeLessThanOrEqual(LIMITS.resetsPerUser);
    } else {
      expect(effects.length).toBeLessThanOrEqual(LIMITS.installsPerDay);
      expect(effects.reduce((s, e) => s + e.cost, 0)).toBeLessThanOrEqual(LIMITS.spendPerDay + 1e-9);
    }
  }
  // No audited success for a write without its effect (the outcome says ok, the records agree).
  for (const a of audit.filter((x) => x.event === 'call.outcome' && x.outcome === 'ok' && x.tool! in EFFECTS)) {
    const rids = [...intentTraces].filter(([, ts]) => ts.has(a.trace_id!)).map(([rid]) => rid);
    expect(rids, `outcome ok without an intent: ${a.trace_id}`).toHaveLength(1);
  }
  stats.orphanIntents += audit.filter(
    (a) => a.event === 'call.intent' && !audit.some((o) => o.event === 'call.outcome' && o.trace_id === a.trace_id),
  ).length;
  // Cap usage never above its limit.
  const limitOf: Record<string, number> = {
    'tickets-per-day': LIMITS.ticketsPerDay,
    'tickets-per-requester': LIMITS.ticketsPerRequester,
    'comments-per-day': LIMITS.commentsPerDay,
    'resets-per-day': LIMITS.resetsPerDay,
    'resets-per-user': LIMITS.resetsPerUser,
    'installs-per-day': LIMITS.installsPerDay,
    'license-spend-per-day': LIMITS.spendPerDay,
  };
  for (const u of await db.query<{ rule: string; scope_key: string; used: number }>(
    'SELECT rule, scope_key, used FROM cap_usage',
  )) {
    expect(limitOf[u.rule], `unknown cap rule ${u.rule}`).toBeDefined();
    expect(u.used, `cap_usage ${u.rule} ${u.scope_key}`).toBeLessThanOrEqual(limitOf[u.rule]! + 1e-9);
  }
  // Caps exact across the crashes: each global rule counts exactly its effects (a dead attempt's reservation was
  // replaced by the retry that adopted its records, or given back when that retry was refused).
  const usedOf = async (rule: string) =>
    (await db.one<{ n: number | null }>('SELECT sum(used) AS n FROM cap_usage WHERE rule = ?', rule))?.n ?? 0;
  const effectsOf = async (tool: Tool) => (await db.query<Effect>(EFFECTS[tool])).length;
  const spent = (await db.query<Effect>(EFFECTS.software_install)).reduce((s, e) => s + e.cost, 0);
  for (const [rule, counted] of [
    ['tickets-per-day', await effectsOf('ticket_create')],
    ['comments-per-day', await effectsOf('ticket_comment')],
    ['resets-per-day', await effectsOf('password_reset')],
    ['installs-per-day', await effectsOf('software_install')],
    ['license-spend-per-day', spent],
  ] as const) {
    const used = await usedOf(rule);
    const leaked = used - counted;
    stats.leaked += leaked;
    expect(Math.abs(leaked), `cap_usage ${rule} counts ${used} for ${counted} of effects`).toBeLessThan(1e-9);
  }
  // The principal budget on software_catalog: counted, and never more admitted than it allows.
  const budget = await db.query<{ used: number }>("SELECT used FROM budget_usage WHERE rule = 'catalog-calls'");
  if (DEBUG)
    mark(`budget_usage ${JSON.stringify(await db.query('SELECT * FROM budget_usage'))}, catalog ok ${catalogOk}`);
  for (const b of budget) expect(b.used).toBeLessThanOrEqual(LIMITS.catalogCalls);
  const catalogAudited = audit.filter(
    (a) => a.tool === 'software_catalog' && a.event === 'call.outcome' && a.outcome === 'ok',
  ).length;
  expect(catalogAudited).toBeLessThanOrEqual(LIMITS.catalogCalls);
  expect(catalogOk).toBeLessThanOrEqual(catalogAudited);
}

/**
 * Found by the loop above (its `leaked` stat, then nonzero): a cap reservation was not tied to the request that
 * made it, so an attempt killed after the caps step reserved and before its effect kept its reservation, and the
 * retry with the same key — which recovery proves never ran, and then adopts and runs — reserved again: charged
 * twice, and at a full cap refused CAP_EXCEEDED although nothing was ever done for it. Now the reservation
 * belongs to the request (migration 9): the caps step records it on the request's idempotency records in the
 * reservation's own transaction, and the retry that adopted them gives the dead attempt's reservation back in the
 * same transaction as it reserves, so the request is charged once and, here at a cap of 1, admitted. Caps are
 * exact across a crash (DESIGN §9); the loop's `leaked` stat is 0.
 */
describe.each(storesUnderTest())('a crash before the effect and a cap, on %s', (store) => {
  it(
    'the retry of a key whose attempt was killed at before-effect is not charged twice',
    async () => {
      const tmp = tempDir();
      const host = storeHost(store);
      try {
        const policy = writePolicy(
          tmp.dir,
          'cap-leak',
          onStore(store, demoPolicy().cap('ticket_create', { name: 'tickets-per-day', window: 'day', limit: 1 })),
        );
        const db = await host.fresh(tmp.dir, 'cap-leak');
        await db.seed(policy);
        const args = { summary: 'One ticket', requester: 'jdoe', reason: 'cap leak', idempotency_key: 'cap-leak-0001' };
        const victim = await stdioPlanner(db.db, policy, { ...db.env, ITGUARD_FAILPOINT: 'before-effect' });
        void victim.call('ticket_create', args).catch(() => undefined);
        await until('the intent', 10_000, async () => ((await intents(db)) > 0 ? true : undefined));
        process.kill(victim.pid, 'SIGKILL');
        await until('the victim to be gone', 5_000, () => gone(victim.pid));
        await victim.close().catch(() => undefined);
        expect(await db.one('SELECT count(*) AS n FROM tickets')).toEqual({ n: 0 });

        // on PostgreSQL the killed attempt's key is taken over once its lease has ended
        if (store === 'postgres') await leasesEnded(db);
        const again = await stdioPlanner(db.db, policy, db.env);
        const r = await again.call('ticket_create', args);
        await again.close();
        expect(codeOf(r), JSON.stringify(r)).toBeUndefined();
        expect(await db.one('SELECT count(*) AS n FROM tickets')).toEqual({ n: 1 });
        // charged once: the cap counts the one ticket, and the completed request holds no other reservation
        expect(await db.one("SELECT sum(used) AS n FROM cap_usage WHERE rule = 'tickets-per-day'")).toEqual({ n: 1 });
      } finally {
        await host.stop();
        tmp.cleanup();
      }
    },
    30_000 + (store === 'postgres' ? PG_HOLD_MS + 15_000 : 0),
  );
});
