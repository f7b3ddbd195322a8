/**
 * The PostgreSQL adapters of the embedded backends' ports (issue 20: src/tools/{tickets,directory,software,outbox}/
 * postgres.ts) on a real PostgreSQL server, seeded with the whole demo by seedPostgresDemo, held to the embedded
 * adapters' behaviour (tickets.test.ts, gates.test.ts, ports.test.ts and the adapters themselves): ticket keys IT-n
 * without gaps under concurrency, idempotency on the request id, the directory's lookups and reset lock, catalog,
 * devices and install job states by age, the outbox's records; store failures as BackendErrors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/core/backend.js';
import { demoDevices, demoPackages, demoUsers } from '../../src/demo/data.js';
import { isPostgresSeeded, seedPostgresDemo } from '../../src/demo/seed-postgres.js';
import { connectPg, type PgStore } from '../../src/store/postgres/connect.js';
import { migratePg } from '../../src/store/postgres/migrations.js';
import { openDb } from '../../src/store/sqlite/db.js';
import { PostgresDirectory } from '../../src/tools/directory/postgres.js';
import { PostgresKb } from '../../src/tools/kb/postgres.js';
import { PgDeliveries } from '../../src/store/postgres/deliveries.js';
import { PostgresOutbox } from '../../src/tools/outbox/postgres.js';
import { INSTALLING_MS, QUEUED_MS } from '../../src/tools/software/embedded.js';
import { PostgresDeploy } from '../../src/tools/software/postgres.js';
import { EmbeddedTickets } from '../../src/tools/tickets/embedded.js';
import { PostgresTickets } from '../../src/tools/tickets/postgres.js';
import { type Pg, startPg } from '../helpers/pg.js';

let pg: Pg;
let store: PgStore;
const stores: PgStore[] = [];
const o = () => ({ signal: new AbortController().signal });
const w = (requestId: string, actor = 'helpdesk-bot') => ({ ...o(), requestId, actor });
let clock = Date.now();
const now = () => clock;

let dbs = 0;
async function freshStore(): Promise<PgStore> {
  const s = await connectPg(await pg.createDatabase(`domain_${++dbs}`));
  stores.push(s);
  await migratePg(s);
  return s;
}

beforeAll(async () => {
  pg = await startPg();
  store = await freshStore();
  const t0 = performance.now();
  expect(await seedPostgresDemo(store)).toBe(true);
  console.log(`seeded the demo on PostgreSQL in ${Math.round(performance.now() - t0)} ms`);
}, 60_000);

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await pg?.stop();
});

const newTicket = (summary: string, extra: Partial<Parameters<PostgresTickets['create']>[0]> = {}) => ({
  project: 'IT',
  summary,
  description: `${summary}: details`,
  requester: 'jdoe',
  requesterEmail: 'jdoe@example.com',
  priority: 'medium' as const,
  ...extra,
});

describe('demo seed on PostgreSQL (seed.ts)', () => {
  it('seeds directory, factors, devices, catalog and KB once; a second run does nothing', async () => {
    expect(await isPostgresSeeded(store)).toBe(true);
    expect(await seedPostgresDemo(store)).toBe(false);
    const [n] = await store.sql<{ u: number; d: number; c: number; f: number }[]>`
      SELECT (SELECT count(*)::INT FROM dir_users) AS u, (SELECT count(*)::INT FROM devices) AS d,
             (SELECT count(*)::INT FROM catalog) AS c, (SELECT count(*)::INT FROM mfa_factors) AS f`;
    expect(n).toEqual({ u: demoUsers.length, d: demoDevices.length, c: demoPackages.length, f: demoUsers.length });
    expect(await new PostgresKb(store).count()).toBeGreaterThan(10);
  });

  it('replicas seeding a new database together seed it once', async () => {
    const s = await freshStore();
    const others = await Promise.all([1, 2].map(() => connectPg(pg.url.replace(/[^/]+$/, `domain_${dbs}`))));
    stores.push(...others);
    const r = await Promise.all([s, ...others].map((x) => seedPostgresDemo(x)));
    expect(r.filter(Boolean)).toHaveLength(1);
    const [n] = await s.sql<{ u: number }[]>`SELECT count(*)::INT AS u FROM dir_users`;
    expect(n!.u).toBe(demoUsers.length);
  });
});

describe('tickets on PostgreSQL (tickets.test.ts)', () => {
  it('creates IT-n and reads it back with comments; a comment bumps updated_at', async () => {
    const t = new PostgresTickets(await freshStore(), now);
    const { ticket, replayed } = await t.create(newTicket('Printer on 3rd floor jams'), w('req-create-1'));
    expect(replayed).toBe(false);
    expect(ticket).toMatchObject({
      key: 'IT-1',
      project: 'IT',
      requester: 'jdoe',
      priority: 'medium',
      status: 'open',
      createdBy: 'helpdesk-bot',
    });
    expect(ticket.createdAt).toBe(new Date(clock).toISOString());
    clock += 1000;
    const c = await t.comment('IT-1', 'Replaced the fuser.', w('req-comment-1', 'tech-1'));
    expect(c).toMatchObject({ replayed: false, comment: { author: 'tech-1', body: 'Replaced the fuser.' } });
    const again = await t.comment('IT-1', 'Replaced the fuser.', w('req-comment-1', 'tech-1'));
    expect(again).toEqual({ comment: c!.comment, replayed: true });
    const got = await t.get('IT-1', o());
    expect(got!.comments).toEqual([c!.comment]);
    expect(got!.updatedAt).toBe(new Date(clock).toISOString());
    expect(await t.get('IT-999', o())).toBeUndefined();
    expect(await t.comment('IT-999', 'x', w('req-comment-2'))).toBeUndefined();
    expect(await t.findByRequest('req-create-1', { ...o(), projects: ['IT'] })).toEqual({
      kind: 'ticket',
      key: 'IT-1',
    });
    expect(await t.findByRequest('req-create-1', { ...o(), projects: ['HR'] })).toBeUndefined();
    expect(await t.findByRequest('req-comment-1', { ...o(), projects: ['IT'] })).toEqual({
      kind: 'comment',
      key: 'IT-1',
      commentId: c!.comment.id,
    });
    expect(await t.findByRequest('req-never', { ...o(), projects: ['IT'] })).toBeUndefined();
    expect((await t.probe({ ...o(), projects: ['IT'] })).ok).toBe(true);
  });

  it('a keyed retry makes no second ticket, nor takes a number', async () => {
    const t = new PostgresTickets(await freshStore(), now);
    const a = await t.create(newTicket('VPN drops'), w('req-a'));
    const b = await t.create(newTicket('VPN drops, again'), w('req-a'));
    expect(b).toEqual({ ticket: a.ticket, replayed: true });
    // The same request racing itself: one ticket.
    const race = await Promise.all([1, 2, 3].map(() => t.create(newTicket('Laptop fan'), w('req-b'))));
    expect(new Set(race.map((r) => r.ticket.key))).toEqual(new Set(['IT-2']));
    expect(race.filter((r) => !r.replayed)).toHaveLength(1);
    expect((await t.create(newTicket('Monitor'), w('req-c'))).ticket.key).toBe('IT-3');
    expect(await t.count()).toBe(3);
  });

  it('20 concurrent creates give 20 consecutive numbers (and projects count apart)', async () => {
    const s = await freshStore();
    // Several replicas: pools of their own.
    const replicas = [
      s,
      ...(await Promise.all([1, 2, 3].map(() => connectPg(pg.url.replace(/[^/]+$/, `domain_${dbs}`))))),
    ];
    stores.push(...replicas.slice(1));
    const ts = replicas.map((r) => new PostgresTickets(r, now));
    const made = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ts[i % ts.length]!.create(newTicket(`ticket ${i}`), w(`req-c${i}`))),
    );
    const numbers = made.map((m) => Number(m.ticket.key.split('-')[1])).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await ts[0]!.create(newTicket('HR thing', { project: 'HR' }), w('req-hr'))).ticket.key).toBe('HR-1');
    expect((await ts[1]!.create(newTicket('next'), w('req-next'))).ticket.key).toBe('IT-21');
  });

  it('searches by text (case-insensitive, % and _ literal), status and requester, within the projects given', async () => {
    const t = new PostgresTickets(await freshStore(), now);
    const at = clock;
    clock = at;
    await t.create(newTicket('Outlook crashes on start'), w('s1'));
    clock = at + 1;
    await t.create(newTicket('100% CPU on laptop', { requester: 'dkim' }), w('s2'));
    clock = at + 2;
    await t.create(newTicket('Badge reader', { project: 'FAC' }), w('s3'));
    await t.create(newTicket('outlook_calendar sync'), w('s4'));
    const keys = async (q: Partial<Parameters<PostgresTickets['search']>[0]>) =>
      (await t.search({ projects: ['IT'], limit: 20, ...q }, o())).map((x) => x.key);
    expect(await keys({})).toEqual(['IT-3', 'IT-2', 'IT-1']);
    expect(await keys({ text: 'OUTLOOK' })).toEqual(['IT-3', 'IT-1']);
    expect(await keys({ text: '100%' })).toEqual(['IT-2']);
    expect(await keys({ text: 'k_c' })).toEqual(['IT-3']);
    expect(await keys({ text: '0% c' })).toEqual(['IT-2']);
    expect(await keys({ text: 'x%' })).toEqual([]);
    expect(await keys({ requester: 'dkim' })).toEqual(['IT-2']);
    expect(await keys({ status: 'open', limit: 1 })).toEqual(['IT-3']);
    expect(await keys({ status: 'closed' })).toEqual([]);
    expect(await keys({ projects: ['FAC'] })).toEqual(['FAC-1']);
    expect(await t.search({ projects: [], limit: 5 }, o())).toEqual([]);
  });

  it('ticket create latency: PostgreSQL against SQLite (informational)', async () => {
    const t = new PostgresTickets(await freshStore());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'itguard-lat-'));
    const db = openDb(path.join(dir, 'lat.db'), { durability: 'fast' });
    const e = new EmbeddedTickets(db);
    const time = async (f: (i: number) => Promise<unknown>) => {
      for (let i = 0; i < 20; i++) await f(-1 - i);
      const ms: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        await f(i);
        ms.push(performance.now() - t0);
      }
      ms.sort((a, b) => a - b);
      return { p50: ms[100]!.toFixed(2), p99: ms[198]!.toFixed(2) };
    };
    const p = await time((i) => t.create(newTicket(`lat ${i}`), w(`lat-${i}`)));
    const s = await time((i) => e.create(newTicket(`lat ${i}`), w(`lat-${i}`)));
    db.close();
    rmSync(dir, { recursive: true, force: true });
    console.log(`ticket create ms: PostgreSQL p50 ${p.p50} p99 ${p.p99}; SQLite (fast) p50 ${s.p50} p99 ${s.p99}`);
  });
});

describe('directory on PostgreSQL (embedded directory)', () => {
  it('looks users up by username, then by mail case-insensitively; groups and recovery as seeded', async () => {
    const d = new PostgresDirectory(store, now);
    const jdoe = demoUsers.find((u) => u.username === 'jdoe')!;
    const u = await d.get('jdoe', o());
    expect(u).toMatchObject({
      username: 'jdoe',
      displayName: jdoe.displayName,
      email: jdoe.email,
      groups: [...jdoe.groups],
      recovery: jdoe.recovery,
      disabled: false,
      mustChangePassword: false,
    });
    expect(await d.get(jdoe.email.toUpperCase(), o())).toEqual(u);
    expect(await d.get('nobody-here', o())).toBeUndefined();
    expect((await d.list()).map((x) => x.username)).toEqual(demoUsers.map((x) => x.username).sort());
    expect((await d.probe(o())).checks[0]!.detail).toBe(`${demoUsers.length} user(s)`);
  });

  it('disabled users read as disabled; every seeded group is there', async () => {
    const d = new PostgresDirectory(store, now);
    expect((await d.get('ptaylor', o()))!.disabled).toBe(true);
    const all = await d.list();
    for (const x of demoUsers) {
      const got = all.find((a) => a.username === x.username)!;
      expect(got.groups).toEqual([...x.groups]);
      expect(got.disabled).toBe(x.disabled ?? false);
    }
  });

  it('a reset lock replaces the password and sets must-change; setPassword clears it; no such user is refused', async () => {
    const s = await freshStore();
    await seedPostgresDemo(s, { kbDir: '/nonexistent' });
    const d = new PostgresDirectory(s, now);
    const before = await s.sql<
      { password_hash: string | null }[]
    >`SELECT password_hash FROM dir_users WHERE username = 'dkim'`;
    await d.lockForReset('dkim', w('reset-1'));
    const locked = await s.sql<
      { password_hash: string }[]
    >`SELECT password_hash FROM dir_users WHERE username = 'dkim'`;
    expect(locked[0]!.password_hash).toMatch(/^scrypt\$/);
    expect(locked[0]!.password_hash).not.toBe(before[0]!.password_hash);
    expect((await d.get('dkim', o()))!.mustChangePassword).toBe(true);
    await d.lockForReset('dkim', w('reset-1'));
    await d.setPassword('dkim', 'correct horse battery staple', o());
    expect((await d.get('dkim', o()))!.mustChangePassword).toBe(false);
    const err = await d.lockForReset('nobody-here', w('reset-2')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).message).toMatch(/no user "nobody-here"/);
    await expect(d.setPassword('nobody-here', 'x', o())).rejects.toThrow(/no user/);
  });
});

describe('software on PostgreSQL (embedded deploy, gates.test.ts)', () => {
  it('lists the catalog with seats and finds packages by text', async () => {
    const dep = new PostgresDeploy(store, now);
    const all = await dep.catalog(undefined, o());
    expect(all.map((p) => p.id).sort()).toEqual(demoPackages.map((p) => p.id).sort());
    const names = all.map((p) => p.name);
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const first = demoPackages[0]!;
    expect(await dep.getPackage(first.id, o())).toEqual({
      ...first,
      versions: [...first.versions],
      platforms: [...first.platforms],
    });
    expect(await dep.getPackage('not-a-package', o())).toBeUndefined();
    const hits = await dep.catalog(first.name.toUpperCase(), o());
    expect(hits.map((p) => p.id)).toContain(first.id);
    expect(hits.every((p) => p.seatsUsed === 0)).toBe(true);
  });

  it('devices belong to their owners', async () => {
    const dep = new PostgresDeploy(store, now);
    const mine = await dep.devicesOf('nfischer', o());
    expect(mine.map((x) => x.id)).toEqual(
      demoDevices
        .filter((x) => x.owner === 'nfischer')
        .map((x) => x.id)
        .sort(),
    );
    expect(await dep.getDevice('LT-1001', o())).toEqual(demoDevices.find((x) => x.id === 'LT-1001'));
    expect(await dep.getDevice('LT-0000', o())).toBeUndefined();
    expect(await dep.devicesOf('nobody-here', o())).toEqual([]);
  });

  it('an install job is queued, then installing, then installed by its age; a keyed retry makes no second job', async () => {
    const s = await freshStore();
    await seedPostgresDemo(s, { kbDir: '/nonexistent' });
    let t = 1_800_000_000_000;
    const dep = new PostgresDeploy(s, () => t);
    const pkg = demoPackages[0]!;
    const req = { username: 'jdoe', deviceId: 'LT-1001', package: pkg.id, version: pkg.versions[0]! };
    const job = await dep.install(req, w('inst-1'));
    expect(job).toMatchObject({ ...req, state: 'queued', createdAt: new Date(t).toISOString() });
    expect(job.id).toMatch(/^JOB-[0-9A-Z]{8}$/);
    expect(await dep.install(req, w('inst-1'))).toEqual(job);
    const race = await Promise.all([1, 2, 3].map(() => dep.install(req, w('inst-2'))));
    expect(new Set(race.map((r) => r.id)).size).toBe(1);
    expect(await dep.seatsUsed(pkg.id, o())).toBe(2);
    t += QUEUED_MS;
    expect((await dep.findByRequest('inst-1', o()))!).toMatchObject({
      state: 'installing',
      updatedAt: new Date(t).toISOString(),
    });
    t += INSTALLING_MS;
    expect((await dep.findByRequest('inst-1', o()))!.state).toBe('installed');
    // Persisted: a reader with an older clock does not move it back.
    const [row] = await s.sql<{ state: string }[]>`SELECT state FROM install_jobs WHERE request_id = 'inst-1'`;
    expect(row!.state).toBe('installed');
    expect((await dep.jobs('jdoe')).map((j) => j.state)).toEqual(['installed', 'installed']);
    expect(await dep.findByRequest('inst-never', o())).toBeUndefined();
    const bad = await dep.install({ ...req, package: 'not-a-package' }, w('inst-3')).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BackendError);
    expect((bad as BackendError).message).toMatch(/no package not-a-package/);
  });

  it('a licence pool is never overbooked by concurrent installs', async () => {
    const s = await freshStore();
    await seedPostgresDemo(s, { kbDir: '/nonexistent' });
    const pooled = demoPackages.find((p) => p.licensePool !== null)!;
    const dep = new PostgresDeploy(s, now);
    const r = await Promise.allSettled(
      Array.from({ length: pooled.licensePool! + 5 }, (_, i) =>
        dep.install(
          { username: 'jdoe', deviceId: 'LT-1001', package: pooled.id, version: pooled.versions[0]! },
          w(`pool-${i}`),
        ),
      ),
    );
    expect(r.filter((x) => x.status === 'fulfilled')).toHaveLength(pooled.licensePool!);
    const refused = r.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    expect(refused).toHaveLength(5);
    for (const x of refused) {
      expect(x.reason).toBeInstanceOf(BackendError);
      expect((x.reason as BackendError).message).toMatch(/licence pool of .* is exhausted/);
    }
    expect(await dep.seatsUsed(pooled.id, o())).toBe(pooled.licensePool);
  });
});

describe('outbox on PostgreSQL (embedded outbox)', () => {
  it('records a delivery once per request id; byRequest finds it', async () => {
    const records = new PgDeliveries(await freshStore(), now);
    const out = new PostgresOutbox(records);
    const m = { username: 'jdoe', channel: 'email' as const, to: 'jdoe@example.com', subject: 'Reset', text: 'link' };
    const a = await out.send(m, w('mail-1'));
    expect(a.messageId).toMatch(/^outbox:\d+$/);
    expect(await out.send({ ...m, text: 'other' }, w('mail-1'))).toEqual(a);
    const race = await Promise.all([1, 2, 3].map(() => out.send(m, w('mail-2'))));
    expect(new Set(race.map((r) => r.messageId)).size).toBe(1);
    const rec = await records.byRequest('mail-1');
    expect(rec).toMatchObject({
      username: 'jdoe',
      channel: 'email',
      address: 'jdoe@example.com',
      subject: 'Reset',
      body: 'link',
      requestId: 'mail-1',
      via: 'embedded',
      messageId: null,
      createdAt: clock,
    });
    expect(`outbox:${rec!.id}`).toBe(a.messageId);
    expect(await records.byRequest('mail-never')).toBeUndefined();
    expect((await records.forUser('jdoe')).map((r) => r.requestId)).toEqual(['mail-1', 'mail-2']);
    expect((await records.list(1)).map((r) => r.requestId)).toEqual(['mail-2']);
    expect(await records.get(rec!.id)).toEqual(rec);
    expect((await out.probe(o())).ok).toBe(true);
  });
});

describe('store failures are BackendErrors', () => {
  it('a server that is gone: every adapter rejects with a BackendError saying retryable, never a crash', async () => {
    const s = await freshStore();
    await s.close();
    const t = new PostgresTickets(s);
    const calls: Promise<unknown>[] = [
      t.create(newTicket('x'), w('gone-1')),
      t.get('IT-1', o()),
      t.search({ projects: ['IT'], limit: 5 }, o()),
      new PostgresDirectory(s).get('jdoe', o()),
      new PostgresDirectory(s).lockForReset('jdoe', w('gone-2')),
      new PostgresDeploy(s).install({ username: 'jdoe', deviceId: 'LT-1001', package: 'x', version: '1' }, w('gone-3')),
      new PostgresDeploy(s).catalog(undefined, o()),
      new PostgresOutbox(new PgDeliveries(s)).send(
        { username: 'jdoe', channel: 'email', to: 'a@b', subject: 's', text: 't' },
        w('gone-4'),
      ),
    ];
    for (const c of calls) {
      const e = await c.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(BackendError);
      expect(typeof (e as BackendError).retryable).toBe('boolean');
    }
    expect((await t.probe({ ...o(), projects: ['IT'] })).ok).toBe(false);
  });

  it('a constraint failure is a BackendError that is not retryable', async () => {
    const s = await freshStore();
    const t = new PostgresTickets(s);
    const e = await t
      .create(newTicket('x', { priority: 'medium', summary: null as unknown as string }), w('null-1'))
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BackendError);
    expect((e as BackendError).retryable).toBe(false);
    expect((e as BackendError).message).toMatch(/^tickets: .*not-null|null value/);
    expect(await t.count()).toBe(0);
  });
});

describe('demo seed failures', () => {
  it('a seed on an unmigrated database is a one-line DatabaseError naming the server, and seeds nothing', async () => {
    const s = await connectPg(await pg.createDatabase(`domain_${++dbs}`));
    stores.push(s);
    const e = await seedPostgresDemo(s, { kbDir: '/nonexistent' }).catch((x: unknown) => x);
    expect((e as Error).name).toBe('DatabaseError');
    expect((e as Error).message).toMatch(/^PostgreSQL store postgres:\/\/postgres@127\.0\.0\.1:\d+\/domain_\d+.*meta/);
  });
});
