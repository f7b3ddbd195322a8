/**
 * The deployment port on the PostgreSQL store (issue 20): the embedded backend's tables (catalog, devices,
 * install_jobs) and behaviour (embedded.ts), shared by every replica. Install jobs move queued → installing →
 * installed by their age when read (the same QUEUED_MS and INSTALLING_MS), and the new state is persisted, never
 * backwards. The licence pool counts a package's jobs that did not fail, checked under the catalog row's lock in
 * the transaction that takes the seat, so concurrent installs cannot overbook it. Idempotent on the request id
 * (`request_id` UNIQUE, INSERT … ON CONFLICT DO NOTHING, then the earlier job). Any store failure is a BackendError
 * saying whether the call may be retried.
 */
import { customAlphabet } from 'nanoid';
import type { ISql } from 'postgres';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import type { DeployPort, Device, InstallJob, NewInstall, Package } from '../../core/ports/deploy.js';
import { type PgStore, toPgStoreError } from '../../store/postgres/connect.js';
import { guarded, Replayed } from '../pg-errors.js';
import { INSTALLING_MS, QUEUED_MS } from './embedded.js';

import { toPkg, type JobRow, type PkgRow } from './rows.js';

const jobId = customAlphabet('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ', 8);

const PKG_COLUMNS = 'id, name, publisher, versions, platforms, cost_usd, self_service, license_pool, description';
const JOB_COLUMNS = 'id, username, device_id, package, version, state, created_at, updated_at';

export class PostgresDeploy implements DeployPort {
  readonly kind = 'postgres';
  constructor(
    private readonly store: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds the packages and devices that are not there yet (the demo seed). */
  async seed(packages: readonly Package[], devices: readonly Device[], sql: ISql = this.store.sql): Promise<void> {
    await guarded(this.store, 'software', async () => {
      if (packages.length) {
        const rows = packages.map((x) => ({
          id: x.id,
          name: x.name,
          publisher: x.publisher,
          versions: JSON.stringify(x.versions),
          platforms: JSON.stringify(x.platforms),
          cost_usd: x.costUsd,
          self_service: x.selfService ? 1 : 0,
          license_pool: x.licensePool,
          description: x.description,
        }));
        await sql`INSERT INTO catalog ${sql(rows)} ON CONFLICT (id) DO NOTHING`;
      }
      if (devices.length) {
        const rows = devices.map((x) => ({
          id: x.id,
          owner: x.owner,
          hostname: x.hostname,
          platform: x.platform,
          model: x.model,
        }));
        await sql`INSERT INTO devices ${sql(rows)} ON CONFLICT (id) DO NOTHING`;
      }
    });
  }

  async catalog(query: string | undefined, o: CallOpts): Promise<(Package & { seatsUsed: number })[]> {
    const q = query?.trim().toLowerCase();
    return guarded(this.store, 'software', async () => {
      const rows = await this.store.sql<(PkgRow & { seats: number })[]>`
        SELECT ${this.store.sql.unsafe(PKG_COLUMNS)},
               (SELECT count(*)::INT FROM install_jobs j WHERE j.package = c.id AND j.state != 'failed') AS seats
          FROM catalog c ORDER BY name COLLATE "C"`.signal(o.signal);
      return rows
        .map((r) => ({ ...toPkg(r), seatsUsed: r.seats }))
        .filter((p) => !q || `${p.id} ${p.name} ${p.publisher} ${p.description}`.toLowerCase().includes(q));
    });
  }

  async getPackage(id: string, o: CallOpts): Promise<Package | undefined> {
    return guarded(this.store, 'software', async () => {
      const [r] = await this.store.sql<PkgRow[]>`
        SELECT ${this.store.sql.unsafe(PKG_COLUMNS)} FROM catalog WHERE id = ${id}`.signal(o.signal);
      return r && toPkg(r);
    });
  }

  async devicesOf(username: string, o: CallOpts): Promise<Device[]> {
    return guarded(this.store, 'software', async () => [
      ...(await this.store.sql<Device[]>`
        SELECT id, owner, hostname, platform, model FROM devices WHERE owner = ${username} ORDER BY id COLLATE "C"`.signal(
        o.signal,
      )),
    ]);
  }

  async getDevice(id: string, o: CallOpts): Promise<Device | undefined> {
    return guarded(this.store, 'software', async () => {
      const [r] = await this.store.sql<Device[]>`
        SELECT id, owner, hostname, platform, model FROM devices WHERE id = ${id}`.signal(o.signal);
      return r && { ...r };
    });
  }

  async seatsUsed(pkg: string, o: CallOpts): Promise<number> {
    return guarded(this.store, 'software', () => seats(this.store.sql, pkg, o.signal));
  }

  async install(i: NewInstall, o: WriteOpts): Promise<InstallJob> {
    return guarded(this.store, 'software', async () => {
      try {
        return await this.store.sql.begin(async (tx): Promise<InstallJob> => {
          // The catalog row's lock orders the installs of one package: the seat count below sees every earlier one.
          const [p] = await tx<PkgRow[]>`
            SELECT ${tx.unsafe(PKG_COLUMNS)} FROM catalog WHERE id = ${i.package} FOR UPDATE`;
          const [prior] = await tx<JobRow[]>`
            SELECT ${tx.unsafe(JOB_COLUMNS)} FROM install_jobs WHERE request_id = ${o.requestId}`;
          if (prior) return this.advance(prior, tx);
          if (!p)
            throw new BackendError(`package: no package ${i.package} in the catalog`, false, { field: 'package' });
          const pkg = toPkg(p);
          if (pkg.licensePool !== null && (await seats(tx, pkg.id)) >= pkg.licensePool) {
            throw new BackendError(`licence pool of ${pkg.id} is exhausted (${pkg.licensePool} seats)`, false, {
              license_pool: pkg.licensePool,
            });
          }
          const at = this.now();
          const [row] = await tx<JobRow[]>`
            INSERT INTO install_jobs (id, request_id, username, device_id, package, version, state, created_at, updated_at)
            VALUES (${`JOB-${jobId()}`}, ${o.requestId}, ${i.username}, ${i.deviceId}, ${i.package}, ${i.version},
                    'queued', ${at}, ${at})
            ON CONFLICT (request_id) DO NOTHING
            RETURNING ${tx.unsafe(JOB_COLUMNS)}`;
          if (!row) throw new Replayed();
          return this.advance(row, tx);
        });
      } catch (e) {
        if (!(e instanceof Replayed)) throw e;
        return (await this.byRequest(o.requestId))!;
      }
    });
  }

  async findByRequest(requestId: string, o: CallOpts): Promise<InstallJob | undefined> {
    return guarded(this.store, 'software', () => this.byRequest(requestId, o.signal));
  }

  async probe(o: CallOpts): Promise<ProbeReport> {
    try {
      const [r] = await this.store.sql<{ n: number }[]>`SELECT count(*)::INT AS n FROM catalog`.signal(o.signal);
      return {
        backend: 'deploy:postgres',
        target: this.store.target,
        ok: true,
        checks: [{ name: 'read catalog', ok: true, detail: `${r!.n} package(s)` }],
      };
    } catch (e) {
      return {
        backend: 'deploy:postgres',
        target: this.store.target,
        ok: false,
        checks: [{ name: 'read catalog', ok: false, detail: toPgStoreError(this.store.target, e).message }],
      };
    }
  }

  /** Install jobs, newest first (tests, the CLI). */
  async jobs(username?: string): Promise<InstallJob[]> {
    return guarded(this.store, 'software', async () => {
      const sql = this.store.sql;
      const rows = await sql<JobRow[]>`
        SELECT ${sql.unsafe(JOB_COLUMNS)} FROM install_jobs
         ${username === undefined ? sql`` : sql`WHERE username = ${username}`}
         ORDER BY created_at DESC`;
      const out: InstallJob[] = [];
      for (const r of rows) out.push(await this.advance(r));
      return out;
    });
  }

  private async byRequest(requestId: string, signal?: AbortSignal): Promise<InstallJob | undefined> {
    const [r] = await this.store.sql<JobRow[]>`
      SELECT ${this.store.sql.unsafe(JOB_COLUMNS)} FROM install_jobs WHERE request_id = ${requestId}`.signal(signal);
    return r && this.advance(r);
  }

  /**
   * Moves a job along by its age and persists the new state, only forwards: a reader that saw an older state
   * never moves a job back (the UPDATE is conditional on the state it read).
   */
  private async advance(r: JobRow, sql: ISql = this.store.sql): Promise<InstallJob> {
    let state = r.state;
    const age = this.now() - r.created_at;
    if (state === 'queued' && age >= QUEUED_MS) state = 'installing';
    if (state === 'installing' && age >= QUEUED_MS + INSTALLING_MS) state = 'installed';
    if (state !== r.state) {
      const at = r.created_at + (state === 'installing' ? QUEUED_MS : QUEUED_MS + INSTALLING_MS);
      await sql`UPDATE install_jobs SET state = ${state}, updated_at = ${at} WHERE id = ${r.id} AND state = ${r.state}`;
      r = { ...r, state, updated_at: at };
    }
    return {
      id: r.id,
      username: r.username,
      deviceId: r.device_id,
      package: r.package,
      version: r.version,
      state: r.state,
      createdAt: new Date(r.created_at).toISOString(),
      updatedAt: new Date(r.updated_at).toISOString(),
    };
  }
}

/** A package's seats in use: its jobs that did not fail. */
async function seats(sql: ISql, pkg: string, signal?: AbortSignal): Promise<number> {
  const [r] = await sql<{ n: number }[]>`
    SELECT count(*)::INT AS n FROM install_jobs WHERE package = ${pkg} AND state != 'failed'`.signal(signal);
  return r!.n;
}
