/**
 * The operator ports the PostgreSQL adapter adds for issue 20 (postgres/audit-read.ts, tokens.ts, notify.ts), run
 * against both adapters: SQLite on a temporary file and PostgreSQL on a real server (test/helpers/pg.ts). Records
 * are appended through each adapter's own unit runner (SQLite's AuditWriter, PostgreSQL's PgUnitRunner) and read
 * back through the ports; the same records on both give the same rows, byte for byte, and the same verification.
 * Tampering goes behind the append-only guard as a superuser would (triggers dropped or disabled, in the test only).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/canonical.js';
import type { AuditEvent, VerifyResult } from '../../src/store/sqlite/audit-store.js';
import { AuditStore } from '../../src/store/sqlite/audit-store.js';
import type { AuditPort, AuditReadPort, NewJob, NotifyPort, TokensPort } from '../../src/store/ports/index.js';
import { single, UnitOfWork } from '../../src/store/unit.js';
import { openDb, type Db } from '../../src/store/sqlite/db.js';
import { AuditWriter } from '../../src/store/sqlite/committer.js';
import { sqliteStore } from '../../src/store/sqlite/ports.js';
import { KillSwitchStore } from '../../src/store/sqlite/killswitch-store.js';
import { CapsStore } from '../../src/store/sqlite/caps-store.js';
import { BudgetStore } from '../../src/store/sqlite/budget-store.js';
import { IdempotencyStore } from '../../src/store/sqlite/idempotency-store.js';
import { ApprovalsStore } from '../../src/store/sqlite/approvals-store.js';
import { TokenStore } from '../../src/store/sqlite/token-store.js';
import { NotifyStore } from '../../src/store/sqlite/notify-store.js';
import { connectPg, type PgStore } from '../../src/store/postgres/connect.js';
import { migratePg } from '../../src/store/postgres/migrations.js';
import { PgUnitRunner } from '../../src/store/postgres/runner.js';
import { PgAuditRead } from '../../src/store/postgres/audit-read.js';
import { PgTokens } from '../../src/store/postgres/tokens.js';
import { PgNotify } from '../../src/store/postgres/notify.js';
import { tempDir } from '../helpers/harness.js';
import { type Pg, startPg } from '../helpers/pg.js';

const T = Date.parse('2026-03-01T10:15:00Z');
/** This process's clock for every store of a test (moved by the tests that need time to pass). */
let clock = T;
const now = () => clock;

interface Handle {
  runner: AuditPort;
  auditLog: AuditReadPort;
  tokens: TokensPort;
  notify: NotifyPort;
  /** Runs one statement on the audit table behind its append-only guard (a superuser's tampering). */
  tamper(statement: string): Promise<void>;
  /** Runs one query on the store's connection, bypassing the ports. */
  query(text: string): Promise<Record<string, unknown>[]>;
  /** `audit verify` by a process of this store whose audit key is `key`. */
  verifyWithKey(key: string | undefined): Promise<VerifyResult>;
  /** PostgreSQL: the pool and the database's URL. */
  pg?: { store: PgStore; url: string };
}

interface Adapter {
  name: 'sqlite' | 'postgres';
  /** `n` handles on one fresh store (as `n` processes or replicas); `key`: the audit key of all of them. */
  fresh(n: number, o?: { key?: string; clock?: () => number }): Promise<Handle[]>;
}

function sqliteAdapter(): Adapter & { cleanup(): void } {
  const { dir, cleanup } = tempDir();
  let n = 0;
  const dbs: Db[] = [];
  return {
    name: 'sqlite',
    cleanup: () => {
      for (const db of dbs) db.close();
      cleanup();
    },
    async fresh(k, o = {}) {
      const file = join(dir, `operator-${++n}.db`);
      clock = T;
      return Array.from({ length: k }, () => {
        const db = openDb(file);
        dbs.push(db);
        const at = o.clock ?? now;
        const audit = new AuditStore(db, o.key, at);
        const store = sqliteStore({
          killSwitch: new KillSwitchStore(db),
          caps: new CapsStore(db, 'UTC'),
          budgets: new BudgetStore(db, 'UTC'),
          idem: new IdempotencyStore(db),
          approvals: new ApprovalsStore(db),
          auditStore: audit,
          tokens: new TokenStore(db, at),
          notifyStore: new NotifyStore(db, at),
        });
        return {
          runner: new AuditWriter(audit),
          auditLog: store.auditLog,
          tokens: store.tokens,
          notify: store.notify,
          async tamper(statement) {
            db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;');
            db.exec(statement);
          },
          query: async (text) => db.prepare(text).all() as Record<string, unknown>[],
          verifyWithKey: async (key) => new AuditStore(db, key).verify(),
        };
      });
    },
  };
}

function pgAdapter(pg: () => Pg): Adapter & { close(): Promise<void> } {
  let n = 0;
  const stores: PgStore[] = [];
  return {
    name: 'postgres',
    close: () => Promise.all(stores.map((s) => s.close())).then(() => undefined),
    async fresh(k, o = {}) {
      const url = await pg().createDatabase(`operator_${++n}`);
      clock = T;
      const hs: Handle[] = [];
      for (let r = 0; r < k; r++) {
        const s = await connectPg(url);
        stores.push(s);
        if (r === 0) await migratePg(s);
        const at = o.clock ?? now;
        hs.push({
          runner: new PgUnitRunner(s, { key: o.key, now: at }),
          // Batches of 2: every read of the whole chain takes several.
          auditLog: new PgAuditRead(s, { key: o.key, batch: 2 }),
          tokens: new PgTokens(s, at),
          notify: new PgNotify(s, at),
          // The test server's user is a superuser: it may switch the table's triggers off (itguard's role may not).
          tamper: (statement) =>
            s.sql
              .begin(async (tx) => {
                await tx.unsafe('ALTER TABLE audit DISABLE TRIGGER USER');
                await tx.unsafe(statement);
                await tx.unsafe('ALTER TABLE audit ENABLE TRIGGER USER');
              })
              .then(() => undefined),
          query: async (text) => [...(await s.sql.unsafe(text))] as Record<string, unknown>[],
          verifyWithKey: (key) => new PgAuditRead(s, { key }).verify(),
          pg: { store: s, url },
        });
      }
      return hs;
    },
  };
}

let pgServer: Pg | undefined;
const sqlite = sqliteAdapter();
const postgres = pgAdapter(() => pgServer!);

beforeAll(async () => {
  pgServer = await startPg();
}, 60_000);

afterAll(async () => {
  sqlite.cleanup();
  await postgres.close();
  await pgServer?.stop();
});

/** A day's worth of records of every kind the readers pick out, some with awkward text. */
const script: AuditEvent[] = [
  {
    event: 'call.intent',
    actor: 'agent-1',
    traceId: 'tr1',
    sessionId: 's1',
    taskId: 'task-a',
    tool: 'ticket_create',
    args: { summary: 'VPN down', password: 'hunter2', note: 'a\u0000b' },
    ts: T + 1,
  },
  {
    event: 'call.outcome',
    actor: 'agent-1',
    traceId: 'tr1',
    taskId: 'task-a',
    tool: 'ticket_create',
    outcome: 'ok',
    detail: { started_at: T + 1 },
    ts: T + 2,
  },
  { event: 'call.denied', actor: 'agent-2', traceId: 'tr2', tool: 'kb_search', code: 'BUDGET_EXHAUSTED', ts: T + 3 },
  { event: 'call.denied', actor: 'agent-2', traceId: 'tr3', tool: 'ticket_create', code: 'CAP_REACHED', ts: T + 4 },
  { event: 'approval.confirmed', actor: 'alice', tool: 'ticket_create', onBehalfOf: 'alice@example.com', ts: T + 5 },
  { event: 'approval.declined', actor: 'bob', tool: 'ticket_create', ts: T + 6 },
  { event: 'approval.confirmed', actor: 'alice', tool: 'kb_search', taskId: 'task-a', ts: T + 7 },
  { event: 'drill', actor: 'admin', detail: { drill: 1 }, ts: T + 8 },
  // A lone surrogate (made well-formed before it is hashed) and unicode in the text columns.
  { event: 'drill', actor: 'admin \uD800 ünï', tool: 'weird\uDC00tool', detail: { drill: 2, emoji: '🔑' }, ts: T + 9 },
];

const job = (requestId: string, recipient: string, kind: NewJob['kind'] = 'requested'): NewJob => ({
  requestId,
  kind,
  channel: 'mail',
  recipient,
  payload: { to: `${recipient}@example.com`, text: `please decide ${requestId}` },
});

/** Appends the script through the runner: some records in units of their own, the rest in one unit together. */
async function appendScript(h: Handle, events: readonly AuditEvent[] = script): Promise<void> {
  for (const e of events.slice(0, 3)) await h.runner.record(e);
  const u = new UnitOfWork('single');
  const seqs = h.runner.append(u, events.slice(3));
  await h.runner.commit(u);
  await seqs;
}

const collect = async <T>(it: Iterable<T> | AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

/** Everything the audit readers answer about the script. */
async function reads(h: Handle) {
  const log = h.auditLog;
  return {
    head: await log.head(),
    tail: await log.tail(100),
    tail3: await log.tail(3),
    byTrace: await log.byTrace('tr1'),
    byTraceNone: await log.byTrace('nope'),
    byTask: await log.byTask('task-a'),
    byTask1: await log.byTask('task-a', 1),
    lastDrill: await log.lastEvent('drill'),
    lastNone: (await log.lastEvent('nothing')) ?? null,
    calls: await log.callRecordsBetween(T + 2, T + 4, 'kb_search'),
    confirms: await log.confirmCounts(),
    all: await collect(log.all()),
    verify: await log.verify(),
  };
}

describe('the same records read the same on both stores', () => {
  it.each([undefined, 'k-audit-1'])('audit key %s: every reader answers alike, byte for byte', async (key) => {
    const [s] = await sqlite.fresh(1, { key });
    const [p] = await postgres.fresh(1, { key });
    await appendScript(s!);
    await appendScript(p!);
    const a = await reads(s!);
    const b = await reads(p!);
    expect(b).toEqual(a);
    // What `itguard audit export` and `tail --json` print: the same keys in the same order.
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));

    // And what they say is right.
    expect(a.head.seq).toBe(script.length);
    expect(a.verify).toEqual({ ok: true, count: script.length, head: a.head });
    expect(a.tail3.map((r) => r.seq)).toEqual([7, 8, 9]);
    expect(a.byTrace.map((r) => r.event)).toEqual(['call.intent', 'call.outcome']);
    expect(a.byTask.map((r) => r.seq)).toEqual([1, 2, 7]);
    expect(a.byTask1.map((r) => r.seq)).toEqual([1]);
    expect(a.lastDrill?.seq).toBe(9);
    expect(a.lastDrill?.actor).toBe('admin \uFFFD ünï');
    expect(a.calls.map((r) => r.code ?? r.outcome)).toEqual(['ok', 'CAP_REACHED']);
    expect(a.confirms).toEqual([
      { tool: 'kb_search', event: 'approval.confirmed', n: 1 },
      { tool: 'ticket_create', event: 'approval.confirmed', n: 1 },
      { tool: 'ticket_create', event: 'approval.declined', n: 1 },
    ]);
    const args = JSON.parse(a.all[0]!.args!) as Record<string, unknown>;
    expect(args).toMatchObject({ summary: 'VPN down', note: 'a\u0000b' });
    expect(args.password).not.toBe('hunter2');
    expect(a.all.map((r) => r.seq)).toEqual(script.map((_, k) => k + 1));
  });

  it('a chain of 2,501 records reads and verifies in batches on PostgreSQL', async () => {
    const [p] = await postgres.fresh(1);
    const many = Array.from({ length: 2501 }, (_, k): AuditEvent => ({ event: 'call.outcome', actor: 'a', ts: T + k }));
    await appendScript(p!, many);
    let statements = 0;
    const s = await connectPg(p!.pg!.url, { onQuery: (q) => void (/seq > /.test(q) && statements++) });
    try {
      const read = new PgAuditRead(s, { key: undefined, batch: 1000 });
      const v = await read.verify();
      expect(v).toMatchObject({ ok: true, count: 2501, head: { seq: 2501 } });
      expect(statements).toBe(3);
      const all = await collect(read.all());
      expect(all).toHaveLength(2501);
      expect(all[2500]!.seq).toBe(2501);
    } finally {
      await s.close();
    }
  });
});

describe.each([sqlite, postgres])('operator ports: $name', (adapter) => {
  it('verify finds an altered record, a removed one, and a head anchored elsewhere', async () => {
    const [h] = await adapter.fresh(1);
    await appendScript(h!);
    const ok = await h!.auditLog.verify();
    expect(ok.ok).toBe(true);
    const head = ok.ok ? ok.head : { seq: 0, hash: '' };

    // An anchored head that does not match: rewritten, or the chain ends before it.
    expect(await h!.auditLog.verify({ expectHead: head })).toEqual(ok);
    expect(await h!.auditLog.verify({ expectHead: { seq: 5, hash: 'f'.repeat(64) } })).toMatchObject({
      ok: false,
      brokenAt: 5,
      count: 4,
      reason: expect.stringMatching(/diverges from the anchored head/),
    });
    expect(await h!.auditLog.verify({ expectHead: { seq: 12, hash: head.hash } })).toMatchObject({
      ok: false,
      brokenAt: 10,
      count: 9,
      reason: expect.stringMatching(/ends at seq 9.*truncated/),
    });

    await h!.tamper(`UPDATE audit SET detail = '{"drill":3}' WHERE seq = 8`);
    expect(await h!.auditLog.verify()).toMatchObject({
      ok: false,
      brokenAt: 8,
      count: 7,
      reason: expect.stringMatching(/does not match its hash/),
    });
    await h!.tamper('DELETE FROM audit WHERE seq = 3');
    expect(await h!.auditLog.verify()).toEqual({
      ok: false,
      count: 2,
      brokenAt: 3,
      reason: 'record 3 is missing',
    });
  });

  it('a keyed chain verifies under its key only', async () => {
    const [h] = await adapter.fresh(1, { key: 'k-audit-2' });
    await appendScript(h!);
    expect(await h!.auditLog.verify()).toMatchObject({ ok: true, count: script.length });
    // The same records read by a process with another key, or none: refused, saying which.
    expect(await h!.verifyWithKey('another key')).toEqual({
      ok: false,
      count: 0,
      brokenAt: 1,
      reason: 'ITGUARD_AUDIT_KEY is not the key the audit chain in this database is keyed with',
    });
    expect(await h!.verifyWithKey(undefined)).toMatchObject({
      ok: false,
      count: 0,
      reason: expect.stringMatching(/^The audit chain in this database is keyed, but ITGUARD_AUDIT_KEY is not set/),
    });
  });

  it('tokens: the secret once, verified by its hash, listed, touched, revoked', async () => {
    const [a, b] = await adapter.fresh(2);
    const made = await single(a!.runner, (tx) => a!.tokens.create(tx, 'svc-1', 'admin', 'laptop'));
    expect(made.token).toMatch(new RegExp(`^itg_${made.id}_[A-Za-z0-9_-]{32}$`));
    expect(made.id).toMatch(/^[0-9a-z]{10}$/);
    clock = T + 1;
    const other = await single(a!.runner, (tx) => a!.tokens.create(tx, 'svc-2', 'admin'));

    // Only the hash is stored, and another handle verifies it.
    const rows = await a!.query('SELECT hash FROM tokens ORDER BY created_at');
    expect(rows.map((r) => r.hash)).toEqual([sha256(made.token), sha256(other.token)]);
    expect(JSON.stringify(rows)).not.toContain(made.token);
    expect(await b!.tokens.verify(made.token)).toEqual({ id: made.id, principal: 'svc-1' });
    expect(await b!.tokens.verify(`${made.token}x`)).toBeUndefined();
    expect(await b!.tokens.verify('')).toBeUndefined();

    await single(b!.runner, (tx) => b!.tokens.touch(tx, made.id, T + 50));
    expect(await a!.tokens.list()).toEqual([
      {
        id: made.id,
        principal: 'svc-1',
        label: 'laptop',
        createdAt: T,
        createdBy: 'admin',
        revokedAt: null,
        lastUsedAt: T + 50,
      },
      {
        id: other.id,
        principal: 'svc-2',
        label: null,
        createdAt: T + 1,
        createdBy: 'admin',
        revokedAt: null,
        lastUsedAt: null,
      },
    ]);

    clock = T + 100;
    expect(await single(b!.runner, (tx) => b!.tokens.revoke(tx, made.id))).toBe(true);
    expect(await single(a!.runner, (tx) => a!.tokens.revoke(tx, made.id))).toBe(false);
    expect(await single(a!.runner, (tx) => a!.tokens.revoke(tx, 'nosuchid00'))).toBe(false);
    expect(await a!.tokens.verify(made.token)).toBeUndefined();
    expect(await a!.tokens.verify(other.token)).toEqual({ id: other.id, principal: 'svc-2' });
    expect((await a!.tokens.list())[0]).toMatchObject({ id: made.id, revokedAt: T + 100 });
  });

  it('a token made by one store verifies on the other (the row copied as `store copy` would)', async () => {
    const [h] = await adapter.fresh(1);
    const [there] = await (adapter.name === 'sqlite' ? postgres : sqlite).fresh(1);
    const made = await single(there!.runner, (tx) => there!.tokens.create(tx, 'svc-x', 'admin', 'copied'));
    const [row] = await there!.query('SELECT * FROM tokens');
    const r = row as Record<string, string | number | null>;
    const q = (v: string | number | null) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${v}'`);
    await h!.query(
      `INSERT INTO tokens (id, principal, hash, label, created_at, created_by) VALUES (${[r.id, r.principal, r.hash, r.label, r.created_at, r.created_by].map((v) => q(v!)).join(', ')}) RETURNING id`,
    );
    expect(await h!.tokens.verify(made.token)).toEqual({ id: made.id, principal: 'svc-x' });
  });

  it('notify: enqueue once per request, kind, channel and recipient; get, list and jobsFor', async () => {
    const [h] = await adapter.fresh(1);
    const enqueue = (jobs: NewJob[]) => single(h!.runner, (tx) => h!.notify.enqueue(tx, jobs));
    expect(await enqueue([job('REQ-1', 'alice'), job('REQ-1', 'bob'), job('REQ-1', 'alice')])).toBe(2);
    clock = T + 10;
    expect(await enqueue([job('REQ-1', 'alice'), job('REQ-2', 'carol'), job('REQ-1', 'alice', 'reminder')])).toBe(2);
    expect(await enqueue([])).toBe(0);

    const listed = await h!.notify.list();
    expect(listed).toHaveLength(4);
    expect(listed.map((j) => j.created_at)).toEqual([T + 10, T + 10, T, T]);
    const first = listed.find((j) => j.recipient === 'bob')!;
    expect(first).toEqual({
      id: expect.stringMatching(/^NTF-[2-9A-Z]{10}$/),
      request_id: 'REQ-1',
      kind: 'requested',
      channel: 'mail',
      recipient: 'bob',
      payload: JSON.stringify({ to: 'bob@example.com', text: 'please decide REQ-1' }),
      status: 'pending',
      attempts: 0,
      next_try_at: T,
      lease_until: null,
      last_error: null,
      ref: null,
      created_at: T,
      sent_at: null,
      updated_at: T,
      closed_at: null,
    });
    expect(await h!.notify.get(first.id)).toEqual(first);
    expect(await h!.notify.get('NTF-NONE')).toBeUndefined();
    expect((await h!.notify.list({ requestId: 'REQ-2' })).map((j) => j.recipient)).toEqual(['carol']);
    expect(await h!.notify.list({ status: 'sent' })).toEqual([]);
    expect(await h!.notify.list({ limit: 1 })).toHaveLength(1);
    expect(
      (await h!.notify.jobsFor('REQ-1'))
        .map((j) => `${j.kind}:${j.recipient}`)
        .slice(0, 2)
        .sort(),
    ).toEqual(['requested:alice', 'requested:bob']);
    expect((await h!.notify.openRequests()).sort()).toEqual(['REQ-1', 'REQ-2']);
  });

  it('notify: two handles claiming at once never get the same job, round after round', async () => {
    const [a, b] = await adapter.fresh(2);
    for (let round = 0; round < 3; round++) {
      const jobs = Array.from({ length: 30 }, (_, k) => job(`REQ-${round}`, `user-${k}`));
      expect(await single(a!.runner, (tx) => a!.notify.enqueue(tx, jobs))).toBe(30);
      const worker = async (h: Handle) => {
        const got: string[] = [];
        for (;;) {
          const claimed = await single(h.runner, (tx) => h.notify.claimDue(tx, 60_000, 4));
          if (!claimed.length) return got;
          for (const j of claimed) expect(j).toMatchObject({ status: 'sending', attempts: 1 });
          got.push(...claimed.map((j) => j.id));
        }
      };
      const [x, y] = await Promise.all([worker(a!), worker(b!), worker(a!), worker(b!)]).then((r) => [
        r[0]!.concat(r[2]!),
        r[1]!.concat(r[3]!),
      ]);
      const both = [...x!, ...y!];
      expect(new Set(both).size).toBe(both.length);
      expect(both).toHaveLength(30);
      const after = await a!.notify.list({ requestId: `REQ-${round}` });
      expect(after.every((j) => j.status === 'sending' && j.attempts === 1)).toBe(true);
    }
  });

  it('notify: a job whose lease ran out is claimable again; a live lease is not', async () => {
    const [a, b] = await adapter.fresh(2);
    await single(a!.runner, (tx) => a!.notify.enqueue(tx, [job('REQ-L', 'alice'), job('REQ-M', 'bob')]));
    // REQ-M's job is claimed for a minute; REQ-L's with a lease already over (as a worker that died long ago).
    const live = await single(a!.runner, (tx) => a!.notify.claimDue(tx, 60_000, 10, 'REQ-M'));
    const dead = await single(a!.runner, (tx) => a!.notify.claimDue(tx, -1, 10, 'REQ-L'));
    expect(live.map((j) => j.recipient)).toEqual(['bob']);
    expect(dead.map((j) => j.recipient)).toEqual(['alice']);
    expect(live[0]!.lease_until).toBeGreaterThan(dead[0]!.lease_until!);

    const again = await single(b!.runner, (tx) => b!.notify.claimDue(tx, 60_000));
    expect(again.map((j) => [j.id, j.status, j.attempts])).toEqual([[dead[0]!.id, 'sending', 2]]);
    expect(await single(b!.runner, (tx) => b!.notify.claimDue(tx, 60_000))).toEqual([]);
  });

  it('notify: sent, a failed attempt retried later, failed for good, an operator retry', async () => {
    const [h] = await adapter.fresh(1);
    const run = <T>(op: (tx: unknown) => T | Promise<T>) => single(h!.runner, op);
    await run((tx) => h!.notify.enqueue(tx, [job('REQ-S', 'alice'), job('REQ-S', 'bob')]));
    const [j1, j2] = await run((tx) => h!.notify.claimDue(tx, 60_000));
    clock = T + 5;
    await run((tx) => h!.notify.sent(tx, j1!.id, 'msg-1'));
    expect(await h!.notify.get(j1!.id)).toMatchObject({
      status: 'sent',
      ref: 'msg-1',
      sent_at: T + 5,
      lease_until: null,
      updated_at: T + 5,
    });
    // A second `sent` of a job no longer sending changes nothing.
    clock = T + 6;
    await run((tx) => h!.notify.sent(tx, j1!.id, 'msg-2'));
    expect(await h!.notify.get(j1!.id)).toMatchObject({ ref: 'msg-1', sent_at: T + 5 });

    await run((tx) => h!.notify.attemptFailed(tx, j2!.id, 'smtp: 451 try later', T + 1000));
    expect(await h!.notify.get(j2!.id)).toMatchObject({
      status: 'pending',
      last_error: 'smtp: 451 try later',
      next_try_at: T + 1000,
      lease_until: null,
    });
    expect(await run((tx) => h!.notify.claimDue(tx, 60_000))).toEqual([]);
    clock = T + 1000;
    const [again] = await run((tx) => h!.notify.claimDue(tx, 60_000));
    expect(again).toMatchObject({ id: j2!.id, attempts: 2 });
    await run((tx) =>
      h!.notify.attemptFailed(tx, j2!.id, `smtp: 550 no such user ${'x'.repeat(600)}\u0000`, undefined),
    );
    const failed = await h!.notify.get(j2!.id);
    expect(failed).toMatchObject({ status: 'failed', next_try_at: T + 1000 });
    expect(failed!.last_error).toHaveLength(500);
    expect(failed!.last_error).toMatch(/^smtp: 550 no such user x+$/);
    expect(await h!.notify.list({ status: 'failed' })).toHaveLength(1);

    clock = T + 2000;
    const retried = await run((tx) => h!.notify.retry(tx, j2!.id));
    expect(retried).toMatchObject({
      ok: true,
      job: { id: j2!.id, status: 'pending', attempts: 0, next_try_at: T + 2000 },
    });
    expect(await run((tx) => h!.notify.retry(tx, j2!.id))).toEqual({ ok: false, reason: 'not_failed' });
    expect(await run((tx) => h!.notify.retry(tx, j1!.id))).toEqual({ ok: false, reason: 'not_failed' });
    expect(await run((tx) => h!.notify.retry(tx, 'NTF-NONE'))).toEqual({ ok: false, reason: 'not_found' });
    expect((await run((tx) => h!.notify.claimDue(tx, 60_000))).map((j) => [j.id, j.attempts])).toEqual([[j2!.id, 1]]);
  });

  it('notify: close cancels unsent notices, adds the outcome, and closes the request', async () => {
    const [h] = await adapter.fresh(1);
    const run = <T>(op: (tx: unknown) => T | Promise<T>) => single(h!.runner, op);
    await run((tx) =>
      h!.notify.enqueue(tx, [
        job('REQ-C', 'alice'),
        job('REQ-C', 'bob'),
        job('REQ-C', 'carol', 'reminder'),
        job('REQ-D', 'dan'),
      ]),
    );
    const [sending] = await run((tx) => h!.notify.claimDue(tx, 60_000, 1, 'REQ-C'));
    clock = T + 30;
    await run((tx) =>
      h!.notify.close(tx, 'REQ-C', [job('REQ-C', 'alice', 'outcome'), job('REQ-C', 'alice', 'outcome')]),
    );
    const jobs = await h!.notify.jobsFor('REQ-C');
    expect(jobs).toHaveLength(4);
    expect(jobs.every((j) => j.closed_at === T + 30)).toBe(true);
    const byKey = Object.fromEntries(jobs.map((j) => [`${j.kind}:${j.recipient}`, j.status]));
    const held = `${sending!.kind}:${sending!.recipient}`;
    expect(byKey).toEqual({
      ...Object.fromEntries(['requested:alice', 'requested:bob', 'reminder:carol'].map((k) => [k, 'cancelled'])),
      [held]: 'sending',
      'outcome:alice': 'pending',
    });
    expect(await h!.notify.openRequests()).toEqual(['REQ-D']);
    // The outcome is due at once; cancelled notices are not.
    expect((await run((tx) => h!.notify.claimDue(tx, 60_000, 10, 'REQ-C'))).map((j) => j.kind)).toEqual(['outcome']);
  });
});

describe('PostgreSQL only', () => {
  it('a lease is compared on the database clock: a replica whose clock runs an hour ahead does not take a live one', async () => {
    const [a] = await postgres.fresh(1);
    const pool = a!.pg!.store;
    const ahead = new PgNotify(pool, () => Date.now() + 3_600_000);
    const realA = new PgNotify(pool, () => Date.now());
    const runner = a!.runner;
    await single(runner, (tx) => realA.enqueue(tx, [job('REQ-Z', 'zed')]));
    const [held] = await single(runner, (tx) => realA.claimDue(tx, 60_000));
    expect(held).toBeDefined();
    expect(await single(runner, (tx) => ahead.claimDue(tx, 60_000))).toEqual([]);
    // …while a job whose lease is over is taken by it at once.
    await single(runner, (tx) => realA.enqueue(tx, [job('REQ-Y', 'yan')]));
    await single(runner, (tx) => realA.claimDue(tx, -1, 10, 'REQ-Y'));
    expect((await single(runner, (tx) => ahead.claimDue(tx, 60_000))).map((j) => j.request_id)).toEqual(['REQ-Y']);
  });
});
