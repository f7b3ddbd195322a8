/**
 * Approver notification jobs (table `notifications`, migration 10). A job is one message on one channel to one
 * recipient: the request's first notice, its reminder, the update once it is decided, or a test. Jobs are enqueued in
 * the transaction that creates the approval request (so a request is never left untold by a crash) and sent by the
 * notifier worker: `claimDue` hands a due job to exactly one process for a lease; `sent` / `attemptFailed` settle it.
 * Payloads hold the rendered message only, never a secret (the channel's secrets are read from the environment when
 * sending).
 */
import { customAlphabet } from 'nanoid';
import { immediate, type Db } from './db.js';
import type { NotifyChannel, NotifyKind, NotifyStatus, NotifyJob, NewJob, JobFilter } from '../ports/types.js';
export { NOTIFY_STATUSES } from '../ports/types.js';
export type { NotifyChannel, NotifyKind, NotifyStatus, NotifyJob, NewJob, JobFilter };

const jobId = customAlphabet('23456789ABCDEFGHJKLMNPQRSTUVWXYZ', 10);

export class NotifyStore {
  constructor(
    readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds jobs that do not exist yet (same request, kind, channel, recipient); returns how many were added. */
  enqueue(jobs: readonly NewJob[]): number {
    if (!jobs.length) return 0;
    const now = this.now();
    const stmt = this.db.prepare(
      `INSERT OR IGNORE INTO notifications (id, request_id, kind, channel, recipient, payload, status, next_try_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
    );
    return immediate(this.db, () =>
      jobs.reduce(
        (n, j) =>
          n +
          stmt.run(
            `NTF-${jobId()}`,
            j.requestId,
            j.kind,
            j.channel,
            j.recipient,
            JSON.stringify(j.payload),
            now,
            now,
            now,
          ).changes,
        0,
      ),
    );
  }

  get(id: string): NotifyJob | undefined {
    return this.db.prepare<[string], NotifyJob>('SELECT * FROM notifications WHERE id = ?').get(id);
  }

  /** Newest first. */
  list(f: JobFilter = {}): NotifyJob[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.status) {
      where.push('status = ?');
      args.push(f.status);
    }
    if (f.requestId) {
      where.push('request_id = ?');
      args.push(f.requestId);
    }
    return this.db
      .prepare<unknown[], NotifyJob>(
        `SELECT * FROM notifications ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`,
      )
      .all(...args, Math.max(1, Math.min(f.limit ?? 100, 1000)));
  }

  /**
   * Due jobs, each claimed for this caller for `leaseMs` (pending → sending, one more attempt counted). A job left
   * `sending` by a process that died is due again once its lease ran out.
   */
  claimDue(leaseMs: number, limit = 20, requestId?: string): NotifyJob[] {
    const now = this.now();
    return immediate(this.db, () => {
      const due = this.db
        .prepare<[number, number, string | null, string | null, number], NotifyJob>(
          `SELECT * FROM notifications WHERE ((status = 'pending' AND next_try_at <= ?) OR (status = 'sending' AND lease_until < ?))
           AND (? IS NULL OR request_id = ?) ORDER BY next_try_at LIMIT ?`,
        )
        .all(now, now, requestId ?? null, requestId ?? null, limit);
      const claim = this.db.prepare(
        "UPDATE notifications SET status = 'sending', attempts = attempts + 1, lease_until = ?, updated_at = ? WHERE id = ? AND status = ?",
      );
      return due
        .filter((j) => claim.run(now + leaseMs, now, j.id, j.status).changes === 1)
        .map((j) => ({ ...j, status: 'sending' as const, attempts: j.attempts + 1, lease_until: now + leaseMs }));
    });
  }

  sent(id: string, ref: string | undefined): void {
    const now = this.now();
    this.db
      .prepare(
        "UPDATE notifications SET status = 'sent', sent_at = ?, ref = ?, last_error = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND status = 'sending'",
      )
      .run(now, ref ?? null, now, id);
  }

  /** A failed attempt: tried again at `nextTryAt`, or failed for good when undefined. */
  attemptFailed(id: string, error: string, nextTryAt: number | undefined): void {
    this.db
      .prepare(
        "UPDATE notifications SET status = ?, last_error = ?, next_try_at = ?, lease_until = NULL, updated_at = ? WHERE id = ? AND status = 'sending'",
      )
      .run(
        nextTryAt === undefined ? 'failed' : 'pending',
        error.slice(0, 500),
        nextTryAt ?? this.now(),
        this.now(),
        id,
      );
  }

  /**
   * An operator's retry: a failed (or cancelled) job is due now with a fresh set of attempts. Returns the job, or
   * why not: it does not exist, or it is not failed or cancelled.
   */
  retry(id: string): { ok: true; job: NotifyJob } | { ok: false; reason: 'not_found' | 'not_failed' } {
    const now = this.now();
    const changed = this.db
      .prepare(
        "UPDATE notifications SET status = 'pending', attempts = 0, next_try_at = ?, updated_at = ? WHERE id = ? AND status IN ('failed', 'cancelled')",
      )
      .run(now, now, id).changes;
    const job = this.get(id);
    if (!job) return { ok: false, reason: 'not_found' };
    return changed ? { ok: true, job } : { ok: false, reason: 'not_failed' };
  }

  /** Requests whose notices went out (or are going out) and whose outcome has not been handled yet. */
  openRequests(limit = 100): string[] {
    return this.db
      .prepare<[number], { request_id: string }>(
        "SELECT DISTINCT request_id FROM notifications WHERE closed_at IS NULL AND kind IN ('requested', 'reminder') LIMIT ?",
      )
      .all(limit)
      .map((r) => r.request_id);
  }

  jobsFor(requestId: string): NotifyJob[] {
    return this.db
      .prepare<[string], NotifyJob>('SELECT * FROM notifications WHERE request_id = ? ORDER BY created_at, id')
      .all(requestId);
  }

  /**
   * The request was decided or expired: notices not sent yet are cancelled (nobody is asked to decide what is
   * decided), the outcome jobs are added, and the request's jobs are marked closed — in one transaction.
   */
  close(requestId: string, outcomes: readonly NewJob[]): void {
    const now = this.now();
    immediate(this.db, () => {
      this.db
        .prepare(
          "UPDATE notifications SET status = 'cancelled', updated_at = ? WHERE request_id = ? AND status = 'pending' AND kind IN ('requested', 'reminder')",
        )
        .run(now, requestId);
      this.enqueue(outcomes);
      this.db
        .prepare('UPDATE notifications SET closed_at = ? WHERE request_id = ? AND closed_at IS NULL')
        .run(now, requestId);
    });
  }
}
