/**
 * What one call costs the PostgreSQL store, at idle (issue 20): an itguard on PostgreSQL in this process (startApp +
 * startHttp, the bench policy with `store: { kind: postgres }`), called over Streamable HTTP one call at a time. Every
 * statement the process's pool sends (BEGIN and COMMIT included) is seen through postgres.js's `debug` hook on the
 * pool's options and counted against the call in progress, and against the unit of work being committed when there
 * is one (PgUnitRunner.commit, wrapped here: admission, settlement, single). Each statement is one round trip
 * (statements sent together would be pipelined in one; the counts say how many were sent).
 *
 * Kinds of call: a read (kb_search), a write (ticket_create), and a refused write (ticket_create for a requester whose
 * per-requester cap is used up). Per kind: statements per call, by unit; the wall time of each unit (BEGIN to COMMIT's
 * answer); how long each unit held the audit chain's head row (from its `SELECT … FROM audit_head … FOR UPDATE` to
 * its COMMIT's answer: every audit-appending unit of every replica takes that lock in turn); the call's latency.
 *
 * And the server's base costs on the same connection kind: one `SELECT 1` round trip, and a one-row INSERT
 * transaction committed with synchronous_commit on (waits for its WAL flush) and off, whose difference is the
 * WAL flush this machine's disk takes.
 */
import http from 'node:http';
import { startApp } from '../../dist/app.js';
import { createToken } from '../../dist/guard/operator.js';
import { startHttp } from '../../dist/http/app.js';
import { createLogger } from '../../dist/log.js';
import postgres from 'postgres';
import { openSession, post, responseOf } from './mcp-http.mjs';
import { benchPolicy } from './policy.mjs';
import { median } from './stats.mjs';
import { READ_QUERIES, REQUESTERS } from './workload.mjs';

const HEAD_LOCK = /FROM\s+audit_head\s+WHERE\s+id\s*=\s*1\s+FOR\s+UPDATE/i;

/** Times `n` runs of `f` (after `warm` untimed ones); the median in ms. */
async function timed(n, warm, f) {
  const ms = [];
  for (let i = 0; i < n + warm; i++) {
    const t = performance.now();
    await f(i);
    if (i >= warm) ms.push(performance.now() - t);
  }
  return median(ms);
}

/** SELECT 1 and a one-row commit with and without waiting for the WAL flush. */
async function baseCosts(url, n) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const lazy = postgres(`${url}?synchronous_commit=off`, { max: 1, onnotice: () => {} });
  try {
    await sql`CREATE TABLE IF NOT EXISTS bench_probe (id BIGSERIAL PRIMARY KEY, v INTEGER NOT NULL)`;
    const selectMs = await timed(n, 20, () => sql`SELECT 1`);
    const commit = (q) => () => q.begin((tx) => tx`INSERT INTO bench_probe (v) VALUES (1)`);
    const durableMs = await timed(n, 10, commit(sql));
    const lazyMs = await timed(n, 10, commit(lazy));
    return { selectMs, durableCommitMs: durableMs, lazyCommitMs: lazyMs, flushMs: durableMs - lazyMs };
  } finally {
    await Promise.all([sql.end({ timeout: 5 }), lazy.end({ timeout: 5 })]);
  }
}

/**
 * Runs the calls on `pg` (a new database). `samples` timed calls per kind after `warmup` untimed ones. Returns
 * { base, kinds: { read, write, refused } } where each kind holds per-call medians.
 */
export async function pgRoundTrips(pg, { samples = 50, warmup = 10 } = {}) {
  const name = 'bench_roundtrips';
  const url = await pg.createDatabase(name);
  // The refused write: the per-requester cap is what refuses it. The write kind spreads its calls over the other
  // requesters, under that cap.
  const perRequester = Math.ceil((samples + warmup) / (REQUESTERS.length - 1)) + 1;
  const app = await startApp({
    dbPath: 'unused.db',
    policy: benchPolicy({ store: 'postgres', perRequester }),
    env: { ...process.env, ITGUARD_PG_URL: url },
    log: createLogger('silent'),
  });
  let running;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  try {
    running = await startHttp(app, { host: '127.0.0.1', port: 0 });
    const { token } = await createToken(app, 'helpdesk-agent', 'bench', 'benchmark');
    const mcp = `${running.url}/mcp`;
    const headers = await openSession(agent, mcp, token);

    // What the statements are counted against: the call in progress, and the unit being committed (sequential calls:
    // at most one unit commits at a time).
    let call;
    let unit;
    app.audit.pg.sql.options.debug = (_conn, text) => {
      if (!call) return;
      call.stmts += 1;
      if (unit) {
        unit.stmts += 1;
        if (HEAD_LOCK.test(text)) unit.headAt = performance.now();
      } else call.outside += 1;
    };
    const commit = app.audit.commit;
    app.audit.commit = async function countedCommit(u) {
      const mine = { kind: u.kind, stmts: 0, t: performance.now(), headAt: undefined };
      unit = mine;
      try {
        return await commit.call(this, u);
      } finally {
        const end = performance.now();
        unit = undefined;
        if (call) call.units.push({ ...mine, ms: end - mine.t, headMs: mine.headAt ? end - mine.headAt : undefined });
      }
    };

    let id = 1;
    const callOnce = async (tool, args) => {
      const myId = id++;
      const r = await post(
        agent,
        mcp,
        { jsonrpc: '2.0', id: myId, method: 'tools/call', params: { name: tool, arguments: args } },
        headers,
      );
      const msg = responseOf(r, myId);
      if (msg.error) throw new Error(`${tool}: JSON-RPC error ${JSON.stringify(msg.error)}`);
      return msg.result;
    };
    const measure = async (kind, tool, argsOf, wantRefused) => {
      const calls = [];
      for (let i = 0; i < samples + warmup; i++) {
        call = { stmts: 0, outside: 0, units: [], t: performance.now() };
        const res = await callOnce(tool, argsOf(i));
        const c = call;
        call = undefined;
        c.ms = performance.now() - c.t;
        if (Boolean(res.isError) !== wantRefused)
          throw new Error(
            `${kind} call ${i}: expected ${wantRefused ? 'a refusal' : 'a result'}, got ${res.content?.[0]?.text}`,
          );
        if (i >= warmup) calls.push(c);
      }
      return summarize(calls);
    };

    const kinds = {};
    kinds.read = await measure('read', 'kb_search', (i) => ({ query: READ_QUERIES[i % READ_QUERIES.length] }), false);
    const ticket = (requester, i) => ({
      summary: `Round-trip ticket ${i} for ${requester}: laptop fan is loud`,
      requester,
      reason: 'benchmark round trips',
    });
    kinds.write = await measure(
      'write',
      'ticket_create',
      (i) => ticket(REQUESTERS[i % (REQUESTERS.length - 1)], i),
      false,
    );
    // Use up the last requester's cap (not measured), then measure the refusals.
    const last = REQUESTERS[REQUESTERS.length - 1];
    for (let i = 0; i < perRequester; i++) {
      const res = await callOnce('ticket_create', ticket(last, `fill-${i}`));
      if (res.isError) throw new Error(`filling ${last}'s cap: refused at ${i + 1} of ${perRequester}`);
    }
    kinds.refused = await measure('refused', 'ticket_create', (i) => ticket(last, `refused-${i}`), true);
    app.audit.pg.sql.options.debug = undefined;
    return { base: await baseCosts(url, samples * 2), kinds, samples };
  } finally {
    agent.destroy();
    await running?.close();
    await app.close();
    await pg.dropDatabase(name);
  }
}

/** Per-call medians: statements in all, outside units and per unit kind; each unit kind's time and head-lock hold. */
function summarize(calls) {
  const unitKinds = [...new Set(calls.flatMap((c) => c.units.map((u) => u.kind)))];
  const per = (f) => median(calls.map(f));
  const units = Object.fromEntries(
    unitKinds.map((k) => {
      const of = (c) => c.units.filter((u) => u.kind === k);
      const all = calls.flatMap(of);
      const held = all.filter((u) => u.headMs !== undefined);
      return [
        k,
        {
          perCall: per((c) => of(c).length),
          stmts: median(all.map((u) => u.stmts)),
          ms: median(all.map((u) => u.ms)),
          // Share of these units that append audit records (take the head lock), and how long they held it.
          auditShare: held.length / all.length,
          headMs: held.length ? median(held.map((u) => u.headMs)) : NaN,
        },
      ];
    }),
  );
  return {
    stmts: per((c) => c.stmts),
    outside: per((c) => c.outside),
    units,
    unitsPerCall: per((c) => c.units.length),
    auditUnitsPerCall: per((c) => c.units.filter((u) => u.headMs !== undefined).length),
    headMsPerCall: per((c) => c.units.reduce((n, u) => n + (u.headMs ?? 0), 0)),
    ms: per((c) => c.ms),
  };
}
