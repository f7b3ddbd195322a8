/**
 * Approver notification jobs on PostgreSQL (NotifyPort), with sqlite/notify-store.ts's states and rules: a job is one
 * message on one channel to one recipient, enqueued in the unit that creates the request, claimed by exactly one
 * notifier for a lease (pending → sending), then settled (`sent`, `attemptFailed`).
 *
 * Several replicas run notifiers on one database: `claimDue` is one statement, `UPDATE … WHERE id IN (SELECT … FOR
 * UPDATE SKIP LOCKED) RETURNING *`, so a due job is claimed by one replica while the others skip the rows it holds
 * (a row another claim committed meanwhile is re-checked, and is no longer due). Leases are taken and compared on
 * the database's clock (`itguard_now_ms()`), which every replica reads alike: a replica whose clock runs ahead cannot
 * take a job whose lease another one still holds. The other times (created, updated, sent, next try) are this
 * process's clock, as on SQLite: `next_try_at` is the notifier's own backoff, compared with the clock that set it.
 */
import { customAlphabet } from 'nanoid';
import type { NotifyPort } from '../ports/index.js';
import type { JobFilter, NewJob, NotifyJob } from '../ports/types.js';
import type { Tx } from '../unit.js';
import type { PgStore } from './connect.js';
import { txOf, type Q } from './runner.js';

const jobId = customAlphabet('23456789ABCDEFGHJKLMNPQRSTUVWXYZ', 10);

/** PostgreSQL text cannot hold NUL: an error message (a remote's words) keeps its length with U+FFFD in its place. */
const noNul = (s: string): string => (s.includes('\0') ? s.replace(/\0/g, '\uFFFD') : s);

/** Due first, as SQLite's `ORDER BY next_try_at` (RETURNING has no order of its own). */
const byDue = (a: NotifyJob, b: NotifyJob): number =>
  a.next_try_at - b.next_try_at || a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export class PgNotify implements NotifyPort {
  constructor(
    private readonly pg: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds jobs that do not exist yet (same request, kind, channel, recipient); returns how many were added. */
  async enqueue(t: Tx, jobs: readonly NewJob[]): Promise<number> {
    return this.insert(txOf(t), jobs);
  }

  private async insert(tx: Q, jobs: readonly NewJob[]): Promise<number> {
    if (!jobs.length) return 0;
    const now = this.now();
    const rows = jobs.map((j) => ({
      id: `NTF-${jobId()}`,
      request_id: j.requestId,
      kind: j.kind,
      channel: j.channel,
      recipient: j.recipient,
      payload: JSON.stringify(j.payload),
      status: 'pending',
      next_try_at: now,
      created_at: now,
      updated_at: now,
    }));
    const added = await tx`INSERT INTO notifications ${tx(rows)}
      ON CONFLICT (request_id, kind, channel, recipient) DO NOTHING RETURNING 1`;
    return added.length;
  }

  async get(id: string): Promise<NotifyJob | undefined> {
    const [r] = await this.pg.sql<NotifyJob[]>`SELECT * FROM notifications WHERE id = ${id}`;
    return r;
  }

  /** Newest first. */
  async list(f: JobFilter = {}): Promise<NotifyJob[]> {
    const sql = this.pg.sql;
    const status = f.status ? sql`AND status = ${f.status}` : sql``;
    const request = f.requestId ? sql`AND request_id = ${f.requestId}` : sql``;
    const rows = await sql<NotifyJob[]>`SELECT * FROM notifications WHERE true ${status} ${request}
      ORDER BY created_at DESC, id DESC LIMIT ${Math.max(1, Math.min(f.limit ?? 100, 1000))}`;
    return rows.slice();
  }

  /**
   * Due jobs, each claimed for this caller for `leaseMs` on the database's clock (pending → sending, one more attempt
   * counted). A job left `sending` by a process that died is due again once its lease ran out. Safe across replicas:
   * rows another transaction holds are skipped, never waited on nor claimed twice.
   */
  async claimDue(t: Tx, leaseMs: number, limit = 20, requestId?: string): Promise<NotifyJob[]> {
    const tx = txOf(t);
    const now = this.now();
    const request = requestId === undefined ? tx`` : tx`AND request_id = ${requestId}`;
    const rows = await tx<NotifyJob[]>`
      WITH clock AS (SELECT itguard_now_ms() AS db_now)
      UPDATE notifications SET status = 'sending', attempts = attempts + 1,
        lease_until = (SELECT db_now FROM clock) + ${leaseMs}, updated_at = ${now}
      WHERE id IN (
        SELECT id FROM notifications
        WHERE ((status = 'pending' AND next_try_at <= ${now})
          OR (status = 'sending' AND lease_until < (SELECT db_now FROM clock))) ${request}
        ORDER BY next_try_at LIMIT ${limit}
        FOR UPDATE SKIP LOCKED)
      RETURNING *`;
    return rows.slice().sort(byDue);
  }

  async sent(t: Tx, id: string, ref: string | undefined): Promise<void> {
    const now = this.now();
    await txOf(t)`UPDATE notifications SET status = 'sent', sent_at = ${now}, ref = ${ref ?? null}, last_error = NULL,
      lease_until = NULL, updated_at = ${now} WHERE id = ${id} AND status = 'sending'`;
  }

  /** A failed attempt: tried again at `nextTryAt`, or failed for good when undefined. */
  async attemptFailed(t: Tx, id: string, error: string, nextTryAt: number | undefined): Promise<void> {
    const now = this.now();
    await txOf(t)`UPDATE notifications SET status = ${nextTryAt === undefined ? 'failed' : 'pending'},
      last_error = ${noNul(error.slice(0, 500))}, next_try_at = ${nextTryAt ?? now}, lease_until = NULL,
      updated_at = ${now} WHERE id = ${id} AND status = 'sending'`;
  }

  /**
   * An operator's retry: a failed (or cancelled) job is due now with a fresh set of attempts. Returns the job, or
   * why not: it does not exist, or it is not failed or cancelled.
   */
  async retry(
    t: Tx,
    id: string,
  ): Promise<{ ok: true; job: NotifyJob } | { ok: false; reason: 'not_found' | 'not_failed' }> {
    const tx = txOf(t);
    const now = this.now();
    const [job] = await tx<NotifyJob[]>`UPDATE notifications SET status = 'pending', attempts = 0,
      next_try_at = ${now}, updated_at = ${now} WHERE id = ${id} AND status IN ('failed', 'cancelled') RETURNING *`;
    if (job) return { ok: true, job };
    const [there] = await tx`SELECT 1 FROM notifications WHERE id = ${id}`;
    return { ok: false, reason: there ? 'not_failed' : 'not_found' };
  }

  /** Requests whose notices went out (or are going out) and whose outcome has not been handled yet. */
  async openRequests(limit = 100): Promise<string[]> {
    const rows = await this.pg.sql<{ request_id: string }[]>`SELECT DISTINCT request_id FROM notifications
      WHERE closed_at IS NULL AND kind IN ('requested', 'reminder') LIMIT ${limit}`;
    return rows.map((r) => r.request_id);
  }

  async jobsFor(requestId: string): Promise<NotifyJob[]> {
    const rows = await this.pg.sql<NotifyJob[]>`SELECT * FROM notifications WHERE request_id = ${requestId}
      ORDER BY created_at, id`;
    return rows.slice();
  }

  /**
   * The request was decided or expired: notices not sent yet are cancelled (nobody is asked to decide what is
   * decided), the outcome jobs are added, and the request's jobs are marked closed — in the caller's unit.
   */
  async close(t: Tx, requestId: string, outcomes: readonly NewJob[]): Promise<void> {
    const tx = txOf(t);
    const now = this.now();
    await tx`UPDATE notifications SET status = 'cancelled', updated_at = ${now} WHERE request_id = ${requestId}
      AND status = 'pending' AND kind IN ('requested', 'reminder')`;
    await this.insert(tx, outcomes);
    await tx`UPDATE notifications SET closed_at = ${now} WHERE request_id = ${requestId} AND closed_at IS NULL`;
  }
}
