/**
 * Install jobs of a remote deployment system on PostgreSQL (table `deploy_jobs`; DeployJobsPort), as
 * store/sqlite/deploy-jobs-store.ts. `open` with a licence pool is exact across replicas: it holds the package's
 * advisory lock for its transaction, so the seat count it reads (READ COMMITTED: every statement after the lock sees
 * every job committed before it) and the job it adds are one step; concurrent opens of one package take turns.
 */
import { customAlphabet } from 'nanoid';
import {
  REQUESTED_HOLDS_SEAT_MS,
  type DeployJobRow,
  type DeployJobState,
  type DeployJobUpdate,
  type DeployJobsPort,
  type NewDeployJob,
} from '../../core/ports/deploy-jobs.js';
import type { Sql, TransactionSql } from 'postgres';
import { attempt, LOCK_CLASS } from './attempt.js';
import { inTransaction, type PgStore } from './connect.js';

const jobId = customAlphabet('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ', 8);

export class PgDeployJobs implements DeployJobsPort {
  constructor(
    private readonly pg: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  async byRequest(requestId: string): Promise<DeployJobRow | undefined> {
    return attempt(this.pg, () => this.rowByRequest(this.pg.sql, requestId));
  }

  private async rowByRequest(q: Sql | TransactionSql, requestId: string): Promise<DeployJobRow | undefined> {
    const [r] = await q<DeployJobRow[]>`SELECT * FROM deploy_jobs WHERE request_id = ${requestId}`;
    return r;
  }

  async seatsUsed(pkg: string): Promise<number> {
    return attempt(this.pg, () => this.seats(this.pg.sql, pkg));
  }

  private async seats(q: Sql | TransactionSql, pkg: string): Promise<number> {
    const [r] = await q<{ n: number }[]>`
      SELECT count(*)::INT AS n FROM deploy_jobs
       WHERE package = ${pkg}
         AND (state IN ('pending', 'installed') OR (state = 'requested' AND created_at > ${this.now() - REQUESTED_HOLDS_SEAT_MS}))`;
    return r?.n ?? 0;
  }

  async open(j: NewDeployJob, seatLimit: number | null): Promise<DeployJobRow | false> {
    return inTransaction(this.pg, async (tx) => {
      // Security: the licence pool is checked and the seat taken under the package's lock, on every replica.
      await tx`SELECT pg_advisory_xact_lock(${LOCK_CLASS.deployJobs}, hashtext(${j.package}))`;
      const prior = await this.rowByRequest(tx, j.request_id);
      if (prior) return prior;
      if (seatLimit !== null && (await this.seats(tx, j.package)) >= seatLimit) return false;
      const at = this.now();
      // A job of this request id under another package may have been added meanwhile: ON CONFLICT keeps that one.
      await tx`
        INSERT INTO deploy_jobs (id, request_id, backend, username, device_id, package, version, app_id, group_id,
          state, created_at, updated_at)
        VALUES (${`JOB-${jobId()}`}, ${j.request_id}, ${j.backend}, ${j.username}, ${j.device_id}, ${j.package},
          ${j.version}, ${j.app_id}, ${j.group_id}, 'requested', ${at}, ${at})
        ON CONFLICT (request_id) DO NOTHING`;
      return (await this.rowByRequest(tx, j.request_id))!;
    });
  }

  async update(id: string, state: DeployJobState, o: DeployJobUpdate = {}): Promise<void> {
    const at = this.now();
    const checked = o.checked ?? false;
    await attempt(
      this.pg,
      () => this.pg.sql`
        UPDATE deploy_jobs SET state = ${state}, error = coalesce(${o.error ?? null}, error),
          note = coalesce(${o.note ?? null}, note),
          updated_at = CASE WHEN state = ${state} THEN updated_at ELSE ${at} END,
          checked_at = CASE WHEN ${checked}::BOOLEAN THEN ${at} ELSE checked_at END
         WHERE id = ${id} AND state NOT IN ('installed', 'failed', 'timed_out')`,
    );
  }

  async get(id: string): Promise<DeployJobRow | undefined> {
    const [r] = await attempt(this.pg, () => this.pg.sql<DeployJobRow[]>`SELECT * FROM deploy_jobs WHERE id = ${id}`);
    return r;
  }
}
