/**
 * The records ports (core/ports/{factor-records,reset-links,deliveries,deploy-jobs}.ts) against both store adapters:
 * SQLite on a temporary file and PostgreSQL on a real server (test/helpers/pg.ts). Each case opens two handles on one
 * fresh store (two connections, as two processes or replicas would) and drives them only through the ports: a TOTP
 * code is accepted once and wrong codes lock the factor, a reset link is claimed once and given back only while no
 * newer link exists, a delivery is recorded once per request id, and deploy jobs opened against a licence pool from
 * both handles at once take exactly the pool. Then the backends built on PostgreSQL (`buildBackends` with
 * `{ kind: 'postgres' }`, the demo seeded by `seed`) answer a ticket create, a KB search and a directory lookup.
 */
import { join } from 'node:path';
import { URI, type TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBackends } from '../../src/backends/build.js';
import type { DeliveriesPort } from '../../src/core/ports/deliveries.js';
import type { DeployJobRow, DeployJobsPort, NewDeployJob } from '../../src/core/ports/deploy-jobs.js';
import { LOCK_MS, MAX_FAILURES, type FactorRecordsPort } from '../../src/core/ports/factor-records.js';
import { RESET_LINK_TTL_MS, type ResetLinksPort } from '../../src/core/ports/reset-links.js';
import { seedPostgresDemo } from '../../src/demo/seed-postgres.js';
import { embeddedPostgres } from '../../src/backends/embedded-postgres.js';
import { connectPg, type PgStore } from '../../src/store/postgres/connect.js';
import { PgDeliveries } from '../../src/store/postgres/deliveries.js';
import { PgDeployJobs } from '../../src/store/postgres/deploy-jobs.js';
import { PgMeta } from '../../src/store/postgres/meta.js';
import { migratePg } from '../../src/store/postgres/migrations.js';
import { PgFactorRecords } from '../../src/store/postgres/mfa.js';
import { PgResetLinks } from '../../src/store/postgres/resets.js';
import { openDb, type Db } from '../../src/store/sqlite/db.js';
import { DeployJobsStore } from '../../src/store/sqlite/deploy-jobs-store.js';
import { MfaStore } from '../../src/store/sqlite/mfa-store.js';
import { OutboxStore } from '../../src/store/sqlite/outbox-store.js';
import { ResetStore } from '../../src/store/sqlite/reset-store.js';
import { policyWith, tempDir } from '../helpers/harness.js';
import { type Pg, startPg } from '../helpers/pg.js';

interface Handle {
  factors: FactorRecordsPort;
  resets: ResetLinksPort;
  deliveries: DeliveriesPort;
  jobs: DeployJobsPort;
}

interface Adapter {
  name: string;
  /** Two handles on one fresh store, on the shared test clock. */
  fresh(): Promise<[Handle, Handle]>;
}

const T = Date.parse('2026-03-01T10:15:00Z');
let clock = T;
const now = () => clock;

let pgServer: Pg;
const pgStores: PgStore[] = [];
const dbs: Db[] = [];
const dir = tempDir();
let fresh = 0;

const sqlite: Adapter = {
  name: 'sqlite',
  async fresh() {
    const file = join(dir.dir, `records-${++fresh}.db`);
    const open = (): Handle => {
      const db = openDb(file);
      dbs.push(db);
      return {
        factors: new MfaStore(db, now),
        resets: new ResetStore(db, now),
        deliveries: new OutboxStore(db, now),
        jobs: new DeployJobsStore(db, now),
      };
    };
    return [open(), open()];
  },
};

async function freshPg(): Promise<[PgStore, PgStore]> {
  const url = await pgServer.createDatabase(`records_${++fresh}`);
  const a = await connectPg(url);
  const b = await connectPg(url);
  pgStores.push(a, b);
  await migratePg(a);
  return [a, b];
}

const postgres: Adapter = {
  name: 'postgres',
  async fresh() {
    const open = (pg: PgStore): Handle => ({
      factors: new PgFactorRecords(pg, now),
      resets: new PgResetLinks(pg, now),
      deliveries: new PgDeliveries(pg, now),
      jobs: new PgDeployJobs(pg, now),
    });
    const [a, b] = await freshPg();
    return [open(a), open(b)];
  },
};

beforeAll(async () => {
  pgServer = await startPg();
}, 60_000);

afterAll(async () => {
  for (const db of dbs) db.close();
  dir.cleanup();
  await Promise.all(pgStores.map((s) => s.close()));
  await pgServer?.stop();
});

/** The authenticator app of an enrolment: the otpauth:// URI the person scanned. */
const app = (uri: string) => URI.parse(uri) as TOTP;
const codeAt = (totp: TOTP, at: number) => totp.generate({ timestamp: at });

describe.each([sqlite, postgres])('records ports: $name', (adapter) => {
  describe('factor records', () => {
    it('enrols, accepts a code once (from either handle), refuses a wrong one, a malformed one, none at all', async () => {
      clock = T;
      const [a, b] = await adapter.fresh();
      expect(await a.factors.has('jdoe')).toBe(false);
      expect(await a.factors.verify('jdoe', '123456')).toEqual({ ok: false, why: 'no_factor' });
      const totp = app(await a.factors.enroll('jdoe'));
      expect(await b.factors.has('jdoe')).toBe(true);
      const code = codeAt(totp, clock);
      expect(await b.factors.verify('jdoe', code)).toEqual({ ok: true });
      // Security: the same code is never accepted twice, whichever process checks it.
      expect(await a.factors.verify('jdoe', code)).toMatchObject({ ok: false, why: 'replayed', failures: 1 });
      expect(await a.factors.verify('jdoe', 'abc')).toMatchObject({ ok: false, why: 'malformed', failures: 2 });
      clock += 30_000;
      expect(await a.factors.verify('jdoe', codeAt(totp, clock))).toEqual({ ok: true });
      // A new enrolment replaces the factor: the old authenticator's codes stop working.
      const again = app(await b.factors.enroll('jdoe'));
      clock += 30_000;
      if (codeAt(again, clock) !== codeAt(totp, clock))
        expect(await a.factors.verify('jdoe', codeAt(totp, clock))).toMatchObject({ ok: false, why: 'wrong' });
      expect(await a.factors.verify('jdoe', codeAt(again, clock))).toEqual({ ok: true });
    });

    it('one code sent to both handles at once is accepted exactly once', async () => {
      clock = T;
      const [a, b] = await adapter.fresh();
      const totp = app(await a.factors.enroll('asmith'));
      const code = codeAt(totp, clock);
      const tries = await Promise.all([a, b, a, b].map((h) => h.factors.verify('asmith', code)));
      expect(tries.filter((t) => t.ok)).toHaveLength(1);
      expect(tries.filter((t) => !t.ok && t.why === 'replayed')).toHaveLength(3);
    });

    it(`${MAX_FAILURES} wrong codes lock the factor for ${LOCK_MS / 60_000} minutes, counted across handles`, async () => {
      clock = T;
      const [a, b] = await adapter.fresh();
      const totp = app(await a.factors.enroll('mgarcia'));
      const wrong = codeAt(totp, clock) === '000000' ? '111111' : '000000';
      for (let i = 1; i < MAX_FAILURES; i++)
        expect(await (i % 2 ? a : b).factors.verify('mgarcia', wrong)).toMatchObject({
          ok: false,
          why: 'wrong',
          failures: i,
          justLocked: false,
        });
      expect(await b.factors.verify('mgarcia', wrong)).toMatchObject({
        ok: false,
        justLocked: true,
        lockedUntil: clock + LOCK_MS,
      });
      expect(await a.factors.lockedUntil('mgarcia')).toBe(clock + LOCK_MS);
      // Locked: even the right code is refused, and nothing more is counted.
      expect(await a.factors.verify('mgarcia', codeAt(totp, clock))).toEqual({
        ok: false,
        why: 'locked',
        lockedUntil: clock + LOCK_MS,
      });
      clock += LOCK_MS + 1;
      expect(await b.factors.lockedUntil('mgarcia')).toBe(0);
      expect(await b.factors.verify('mgarcia', codeAt(totp, clock))).toEqual({ ok: true });
    });
  });

  describe('reset links', () => {
    it('issues, claims once, gives a refused claim back, and a newer link revokes the older', async () => {
      clock = T;
      const [a, b] = await adapter.fresh();
      await a.resets.issue('link-a', 'jdoe', 'REQ-1');
      expect(await b.resets.link('link-a')).toEqual({
        username: 'jdoe',
        expiresAt: T + RESET_LINK_TTL_MS,
        usable: true,
      });
      expect(await b.resets.link('no-such-link')).toBeUndefined();
      const claim = (await b.resets.claim('link-a'))!;
      expect(claim).toEqual({ username: 'jdoe', claimedAt: T });
      expect(await a.resets.claim('link-a')).toBeUndefined(); // spent while the directory call runs
      clock += 5;
      expect(await a.resets.unclaim('link-a', claim)).toBe(true); // the directory refused the password
      expect((await b.resets.link('link-a'))!.usable).toBe(true);

      const again = (await a.resets.claim('link-a'))!;
      clock += 10;
      await b.resets.issue('link-b', 'jdoe', 'REQ-2'); // a new reset: only link-b works from now on
      clock += 10;
      expect(await a.resets.unclaim('link-a', again)).toBe(false);
      expect((await a.resets.link('link-a'))!.usable).toBe(false);
      expect((await a.resets.link('link-b'))!.usable).toBe(true);

      await b.resets.issue('link-c', 'jdoe', 'REQ-3');
      expect((await a.resets.link('link-b'))!.usable).toBe(false); // unused, revoked by the newer one
      await a.resets.revoke('link-c'); // its delivery failed
      expect(await b.resets.claim('link-c')).toBeUndefined();
      await a.resets.delivered('link-c', 7);
    });

    it('a link claimed from both handles at once is spent exactly once; an expired link cannot be claimed', async () => {
      clock = T;
      const [a, b] = await adapter.fresh();
      await a.resets.issue('link-x', 'dkim', 'REQ-X');
      const claims = await Promise.all([a, b, a, b].map((h) => h.resets.claim('link-x')));
      expect(claims.filter(Boolean)).toHaveLength(1);
      await a.resets.issue('link-y', 'asmith', 'REQ-Y');
      clock += RESET_LINK_TTL_MS;
      expect((await b.resets.link('link-y'))!.usable).toBe(false);
      expect(await b.resets.claim('link-y')).toBeUndefined();
    });
  });

  describe('deliveries', () => {
    it('records one delivery per request id, from either handle; lists newest first, per user oldest first', async () => {
      clock = T;
      const [a, b] = await adapter.fresh();
      const m = {
        username: 'jdoe',
        channel: 'email' as const,
        address: 'jdoe@example.com',
        subject: 'Reset',
        body: 'text',
        via: 'smtp',
        messageId: '<m1@relay>',
      };
      const first = await a.deliveries.record({ ...m, requestId: 'mail-1' });
      expect(first).toMatchObject({ ...m, requestId: 'mail-1', createdAt: T });
      expect(await b.deliveries.record({ ...m, body: 'other', requestId: 'mail-1' })).toEqual(first);
      const raced = await Promise.all([a, b].map((h) => h.deliveries.record({ ...m, requestId: 'mail-2' })));
      expect(raced[0]).toEqual(raced[1]);
      clock += 1000;
      const other = await b.deliveries.record({ ...m, username: 'asmith', requestId: null });
      expect(await a.deliveries.get(first.id)).toEqual(first);
      expect(await a.deliveries.byRequest('mail-2')).toEqual(raced[0]);
      expect(await a.deliveries.byRequest('mail-never')).toBeUndefined();
      expect((await b.deliveries.list(2)).map((r) => r.id)).toEqual([other.id, raced[0]!.id]);
      expect((await b.deliveries.forUser('jdoe')).map((r) => r.requestId)).toEqual(['mail-1', 'mail-2']);
    });
  });

  describe('deploy jobs', () => {
    const job = (requestId: string, pkg = 'adobe-acrobat-pro'): NewDeployJob => ({
      request_id: requestId,
      backend: 'intune',
      username: 'jdoe',
      device_id: 'dev-1',
      package: pkg,
      version: '2025.1',
      app_id: 'app-guid',
      group_id: 'group-guid',
    });

    it('opens against a licence pool from both handles at once: exactly the pool is admitted', async () => {
      clock = T;
      const [a, b] = await adapter.fresh();
      const limit = 3;
      for (let round = 0; round < 3; round++) {
        const pkg = `pkg-${round}`;
        const opened = await Promise.all(
          Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).jobs.open(job(`r${round}-${i}`, pkg), limit)),
        );
        expect(opened.filter(Boolean)).toHaveLength(limit);
        expect(await a.jobs.seatsUsed(pkg)).toBe(limit);
        expect(await b.jobs.seatsUsed(pkg)).toBe(limit);
      }
    });

    const admitted = async (r: Promise<DeployJobRow | false> | DeployJobRow | false): Promise<DeployJobRow> => {
      const j = await r;
      if (!j) throw new Error('the pool refused a job it had room for');
      return j;
    };

    it('one job per request id; a final state never moves; failed and stale requested jobs free their seat', async () => {
      clock = T;
      const [a, b] = await adapter.fresh();
      const j1 = await admitted(a.jobs.open(job('req-1'), 2));
      expect(j1).toMatchObject({ request_id: 'req-1', state: 'requested', created_at: T, checked_at: null });
      expect(await b.jobs.open(job('req-1'), 2)).toEqual(j1);
      const j2 = await admitted(b.jobs.open(job('req-2'), 2));
      expect(await a.jobs.open(job('req-3'), 2)).toBe(false);
      // The request whose job exists gets it back even with the pool full.
      expect(await a.jobs.open(job('req-2'), 2)).toEqual(j2);

      clock += 1000;
      await a.jobs.update(j1.id, 'pending', { note: 'sync not accepted' });
      await b.jobs.update(j1.id, 'pending', { checked: true });
      expect(await b.jobs.get(j1.id)).toMatchObject({
        state: 'pending',
        note: 'sync not accepted',
        updated_at: T + 1000,
        checked_at: T + 1000,
      });
      await a.jobs.update(j2.id, 'failed', { error: '0x87D1041C: not detected' });
      await b.jobs.update(j2.id, 'installed');
      expect(await a.jobs.byRequest('req-2')).toMatchObject({ state: 'failed', error: '0x87D1041C: not detected' });
      expect(await a.jobs.seatsUsed('adobe-acrobat-pro')).toBe(1);
      const j3 = await admitted(b.jobs.open(job('req-3'), 2));
      expect(j3.state).toBe('requested');
      expect(await a.jobs.open(job('req-4'), 2)).toBe(false);
      // A job left `requested` for over an hour (abandoned after a failure) no longer holds a seat.
      clock += 3600_000 + 1;
      expect(await a.jobs.seatsUsed('adobe-acrobat-pro')).toBe(1);
      expect(await a.jobs.open(job('req-4'), 2)).not.toBe(false);
      expect(await a.jobs.open(job('req-5'), null)).not.toBe(false);
      expect(await b.jobs.byRequest('req-never')).toBeUndefined();
    });
  });
});

describe('the PostgreSQL meta table', () => {
  it('gets, sets and keeps the first of two values set if absent', async () => {
    const [a, b] = await freshPg();
    const ma = new PgMeta(a);
    const mb = new PgMeta(b);
    expect(await ma.get('k')).toBeUndefined();
    await ma.set('k', 'one');
    await mb.set('k', 'two');
    expect(await ma.get('k')).toBe('two');
    const firsts = await Promise.all([ma.setIfAbsent('state', 'x'), mb.setIfAbsent('state', 'y')]);
    expect(firsts[0]).toBe(firsts[1]);
    expect(await mb.get('state')).toBe(firsts[0]);
  });
});

describe('backends built on PostgreSQL', () => {
  it('seeds the demo, then a ticket create, a KB search and a directory lookup go through the built ports', async () => {
    clock = Date.now();
    const [pg, other] = await freshPg();
    const policy = policyWith();
    expect(await seedPostgresDemo(pg, { now })).toBe(true);
    expect(await seedPostgresDemo(other, { now })).toBe(false);
    const { backends, embedded } = buildBackends({ embedded: embeddedPostgres(pg, now), policy, now });
    const o = { signal: AbortSignal.timeout(10_000) };
    expect(backends.tickets.kind).toBe('postgres');

    const created = await backends.tickets.create(
      {
        project: backends.projects.home,
        summary: 'VPN drops every hour',
        description: 'since Monday',
        requester: 'jdoe',
        requesterEmail: 'jdoe@example.com',
        priority: 'medium',
      },
      { ...o, requestId: 'pg-built-1', actor: 'helpdesk-bot' },
    );
    expect(created.replayed).toBe(false);
    expect((await backends.tickets.get(created.ticket.key, o))!.summary).toBe('VPN drops every hour');
    expect(await embedded.tickets.count()).toBe(1);

    const hits = await backends.kb.search('vpn keeps disconnecting', 5, o);
    expect(hits[0]).toMatchObject({ id: 'KB-1001' });

    const u = await backends.directory.get('jdoe', o);
    expect(u).toMatchObject({ username: 'jdoe', disabled: false });
    expect((await embedded.directory.user('jdoe'))!.email).toBe(u!.email);
    expect(await backends.factors.enrolled('jdoe', o)).toBe(true);

    // The reset flow on the PostgreSQL records: the link is delivered to the mailbox table and works once.
    const out = await backends.resets.reset('jdoe', { ...o, requestId: 'pg-reset-1', linksBase: 'https://it.example' });
    expect(out).toMatchObject({ username: 'jdoe', channel: 'email' });
    expect(await backends.resets.recover('pg-reset-1')).toEqual(out);
    const mail = (await embedded.deliveries.forUser('jdoe')).at(-1)!;
    const token = /\/reset\/([A-Za-z0-9_-]+)/.exec(mail.body)![1]!;
    expect(await backends.resets.link(token)).toMatchObject({ username: 'jdoe', usable: true });
    expect(await backends.resets.complete(token, 'correct horse battery staple', o)).toEqual({
      ok: true,
      username: 'jdoe',
    });
    expect(await backends.resets.complete(token, 'another long password', o)).toEqual({ ok: false, gone: true });
  });
});
