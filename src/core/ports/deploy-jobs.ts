/**
 * The deploy jobs port: install jobs of a remote deployment system (table `deploy_jobs`; tools/software/intune.ts),
 * one per request id, recorded before the first write to the platform and moved along as the platform reports.
 * Implemented by the store adapters (store/sqlite/deploy-jobs-store.ts, store/postgres/deploy-jobs.ts). Licence
 * seats count the jobs that did not fail or time out; `open` takes a seat exactly, across every process.
 */
import type { Awaitable } from '../backend.js';

export type DeployJobState = 'requested' | 'pending' | 'installed' | 'failed' | 'timed_out';
export const FINAL_STATES: readonly DeployJobState[] = ['installed', 'failed', 'timed_out'];

/** A job `requested` (its platform writes not done yet) holds its seat this long, then no more. */
export const REQUESTED_HOLDS_SEAT_MS = 3600_000;

export interface DeployJobRow {
  id: string;
  request_id: string;
  backend: string;
  username: string;
  device_id: string;
  package: string;
  version: string;
  app_id: string;
  group_id: string;
  state: DeployJobState;
  error: string | null;
  note: string | null;
  created_at: number;
  updated_at: number;
  checked_at: number | null;
}

export type NewDeployJob = Pick<
  DeployJobRow,
  'request_id' | 'backend' | 'username' | 'device_id' | 'package' | 'version' | 'app_id' | 'group_id'
>;

export interface DeployJobUpdate {
  error?: string | null;
  note?: string | null;
  /** The platform was asked (the job's `checked_at` moves). */
  checked?: boolean;
}

export interface DeployJobsPort {
  byRequest(requestId: string): Awaitable<DeployJobRow | undefined>;
  /**
   * Seats taken: jobs pending or installed, and jobs still `requested` for REQUESTED_HOLDS_SEAT_MS (a retry resumes
   * such a job within minutes; one abandoned after a failure must not hold a seat for ever).
   */
  seatsUsed(pkg: string): Awaitable<number>;
  /**
   * The job of this request, created as `requested` when there is none. `seatLimit` (the licence pool) is checked
   * atomically with taking the seat, across processes; false when the pool is full.
   */
  open(j: NewDeployJob, seatLimit: number | null): Awaitable<DeployJobRow | false>;
  /** Moves a job on; a job in a final state never moves again. */
  update(id: string, state: DeployJobState, o?: DeployJobUpdate): Awaitable<void>;
  get(id: string): Awaitable<DeployJobRow | undefined>;
}
