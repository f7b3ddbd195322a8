/**
 * Install jobs of a remote deployment system (table `deploy_jobs`, owner of that table): one per request id,
 * recorded before the first write to the platform, moved along as the platform reports. Licence seats count the
 * jobs that did not fail or time out (see `seatsUsed`).
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
import { effectCommit, type Db } from './db.js';

const jobId = customAlphabet('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ', 8);

export class DeployJobsStore implements DeployJobsPort {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  byRequest(requestId: string): DeployJobRow | undefined {
    return this.db.prepare<[string], DeployJobRow>('SELECT * FROM deploy_jobs WHERE request_id = ?').get(requestId);
  }

  /**
   * Seats taken: jobs pending or installed, and jobs still `requested` (their Graph writes not yet done) for an hour:
   * a retry resumes such a job within minutes, and one abandoned after a failure must not hold a seat for ever.
   */
  seatsUsed(pkg: string): number {
    return (
      this.db
        .prepare<[string, number], { n: number }>(
          "SELECT count(*) AS n FROM deploy_jobs WHERE package = ? AND (state IN ('pending', 'installed') OR (state = 'requested' AND created_at > ?))",
        )
        .get(pkg, this.now() - REQUESTED_HOLDS_SEAT_MS)?.n ?? 0
    );
  }

  /**
   * The job of this request, created as `requested` when there is none. `seatLimit` (the licence pool) is checked
   * in the same transaction that takes the seat; false when the pool is full.
   */
  open(j: NewDeployJob, seatLimit: number | null): DeployJobRow | false {
    return effectCommit(this.db, () =>
      this.db
        .transaction((): DeployJobRow | false => {
          const prior = this.byRequest(j.request_id);
          if (prior) return prior;
          if (seatLimit !== null && this.seatsUsed(j.package) >= seatLimit) return false;
          const at = this.now();
          const id = `JOB-${jobId()}`;
          this.db
            .prepare(
              "INSERT INTO deploy_jobs (id, request_id, backend, username, device_id, package, version, app_id, group_id, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?)",
            )
            .run(
              id,
              j.request_id,
              j.backend,
              j.username,
              j.device_id,
              j.package,
              j.version,
              j.app_id,
              j.group_id,
              at,
              at,
            );
          return this.byRequest(j.request_id)!;
        })
        .immediate(),
    );
  }

  /** Moves a job on; a job in a final state never moves again. */
  update(id: string, state: DeployJobState, o: DeployJobUpdate = {}): void {
    const at = this.now();
    effectCommit(this.db, () =>
      this.db
        .prepare(
          `UPDATE deploy_jobs SET state = ?, error = coalesce(?, error), note = coalesce(?, note), updated_at = CASE WHEN state = ? THEN updated_at ELSE ? END, checked_at = CASE WHEN ? THEN ? ELSE checked_at END
           WHERE id = ? AND state NOT IN ('installed', 'failed', 'timed_out')`,
        )
        .run(state, o.error ?? null, o.note ?? null, state, at, o.checked ? 1 : 0, at, id),
    );
  }

  get(id: string): DeployJobRow | undefined {
    return this.db.prepare<[string], DeployJobRow>('SELECT * FROM deploy_jobs WHERE id = ?').get(id);
  }
}
