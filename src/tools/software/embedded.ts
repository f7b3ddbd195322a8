/**
 * Embedded software catalog, devices and deployment backend. Install jobs move queued → installing →
 * installed over time (derived from their age when read, then persisted); the licence pool of a package counts
 * its jobs that did not fail. Idempotent on the request id.
 */
import { customAlphabet } from 'nanoid';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import { effectCommit, type Db } from '../../store/sqlite/db.js';
import type { DeployPort, Device, InstallJob, NewInstall, Package } from '../../core/ports/deploy.js';

import { toPkg, type JobRow, type PkgRow } from './rows.js';

const jobId = customAlphabet('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ', 8);

export type { Device, InstallJob, Package, Platform } from '../../core/ports/deploy.js';

/** How long a job sits in each state before it moves on. */
export const QUEUED_MS = 2_000;
export const INSTALLING_MS = 3_000;

export class EmbeddedDeploy implements DeployPort {
  readonly kind = 'embedded';
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  seed(packages: readonly Package[], devices: readonly Device[]): void {
    const p = this.db.prepare('INSERT OR IGNORE INTO catalog VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const d = this.db.prepare('INSERT OR IGNORE INTO devices VALUES (?, ?, ?, ?, ?)');
    for (const x of packages)
      p.run(
        x.id,
        x.name,
        x.publisher,
        JSON.stringify(x.versions),
        JSON.stringify(x.platforms),
        x.costUsd,
        x.selfService ? 1 : 0,
        x.licensePool,
        x.description,
      );
    for (const x of devices) d.run(x.id, x.owner, x.hostname, x.platform, x.model);
  }

  async catalog(query: string | undefined, _o?: CallOpts): Promise<(Package & { seatsUsed: number })[]> {
    const q = query?.trim().toLowerCase();
    return this.db
      .prepare<[], PkgRow>('SELECT * FROM catalog ORDER BY name')
      .all()
      .map(toPkg)
      .filter((p) => !q || `${p.id} ${p.name} ${p.publisher} ${p.description}`.toLowerCase().includes(q))
      .map((p) => ({ ...p, seatsUsed: this.seats(p.id) }));
  }

  async getPackage(id: string, _o?: CallOpts): Promise<Package | undefined> {
    return this.pkg(id);
  }

  private pkg(id: string): Package | undefined {
    const r = this.db.prepare<[string], PkgRow>('SELECT * FROM catalog WHERE id = ?').get(id);
    return r && toPkg(r);
  }

  async devicesOf(username: string, _o?: CallOpts): Promise<Device[]> {
    return this.db.prepare<[string], Device>('SELECT * FROM devices WHERE owner = ? ORDER BY id').all(username);
  }

  async getDevice(id: string, _o?: CallOpts): Promise<Device | undefined> {
    return this.db.prepare<[string], Device>('SELECT * FROM devices WHERE id = ?').get(id);
  }

  async seatsUsed(pkg: string, _o?: CallOpts): Promise<number> {
    return this.seats(pkg);
  }

  private seats(pkg: string): number {
    return (
      this.db
        .prepare<[string], { n: number }>(
          "SELECT count(*) AS n FROM install_jobs WHERE package = ? AND state != 'failed'",
        )
        .get(pkg)?.n ?? 0
    );
  }

  async install(i: NewInstall, o: WriteOpts): Promise<InstallJob> {
    return effectCommit(this.db, () =>
      this.db
        .transaction((): InstallJob => {
          const prior = this.byRequest(o.requestId);
          if (prior) return prior;
          const pkg = this.pkg(i.package);
          if (!pkg)
            throw new BackendError(`package: no package ${i.package} in the catalog`, false, { field: 'package' });
          // The pool is checked inside the transaction that takes the seat.
          if (pkg.licensePool !== null && this.seats(pkg.id) >= pkg.licensePool) {
            throw new BackendError(`licence pool of ${pkg.id} is exhausted (${pkg.licensePool} seats)`, false, {
              license_pool: pkg.licensePool,
            });
          }
          const id = `JOB-${jobId()}`;
          const at = this.now();
          this.db
            .prepare(
              "INSERT INTO install_jobs (id, request_id, username, device_id, package, version, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            )
            .run(id, o.requestId, i.username, i.deviceId, i.package, i.version, at, at);
          return this.job(id)!;
        })
        .immediate(),
    );
  }

  private job(id: string): InstallJob | undefined {
    const r = this.db.prepare<[string], JobRow>('SELECT * FROM install_jobs WHERE id = ?').get(id);
    return r && this.advance(r);
  }

  /** Moves a job along by its age and persists the new state. */
  private advance(r: JobRow): InstallJob {
    let state = r.state;
    const age = this.now() - r.created_at;
    if (state === 'queued' && age >= QUEUED_MS) state = 'installing';
    if (state === 'installing' && age >= QUEUED_MS + INSTALLING_MS) state = 'installed';
    if (state !== r.state) {
      const at = r.created_at + (state === 'installing' ? QUEUED_MS : QUEUED_MS + INSTALLING_MS);
      this.db.prepare('UPDATE install_jobs SET state = ?, updated_at = ? WHERE id = ?').run(state, at, r.id);
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

  async findByRequest(requestId: string, _o?: CallOpts): Promise<InstallJob | undefined> {
    return this.byRequest(requestId);
  }

  async probe(_o: CallOpts): Promise<ProbeReport> {
    const n = (this.db.prepare('SELECT count(*) AS n FROM catalog').get() as { n: number }).n;
    return {
      backend: 'deploy:embedded',
      target: 'the itguard database',
      ok: true,
      checks: [{ name: 'read catalog', ok: true, detail: `${n} package(s)` }],
    };
  }

  private byRequest(requestId: string): InstallJob | undefined {
    const r = this.db.prepare<[string], JobRow>('SELECT * FROM install_jobs WHERE request_id = ?').get(requestId);
    return r && this.advance(r);
  }

  /** Embedded only (tests, the CLI): install jobs, newest first. */
  jobs(username?: string): InstallJob[] {
    const rows = username
      ? this.db
          .prepare<[string], JobRow>('SELECT * FROM install_jobs WHERE username = ? ORDER BY created_at DESC')
          .all(username)
      : this.db.prepare<[], JobRow>('SELECT * FROM install_jobs ORDER BY created_at DESC').all();
    return rows.map((r) => this.advance(r));
  }
}
