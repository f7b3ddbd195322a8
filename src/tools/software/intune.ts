/**
 * The Intune deployment adapter (`deploy: { kind: intune, … }`). The catalog stays itguard's (only the ids mapped
 * in `apps:` are installable); devices are the user's Intune managed devices (found by the directory's e-mail
 * address as UPN). An install is an asynchronous job (DESIGN §8):
 *
 *   requested  recorded before the first Graph write (a retry of the request resumes it, never starts another)
 *   pending    the device (or, with `assign: user`, the user) is a member of the app's required-assignment group
 *              ("already a member" counts) and a device sync was asked for
 *   installed | failed (the platform's hex error and detail) | timed_out (no final state within install_timeout)
 *
 * The state is read from the install status report (`POST /beta/deviceManagement/reports/
 * getDeviceInstallStatusReport`) when someone asks (request_status, a replay, the console), at most every
 * `pollMs`. Catalog-only installs, device ownership and licence seats are enforced in the tool before this runs.
 */
import { obj, str } from '../cloud-http.js';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import type { DeployPort, Device, InstallJob, NewInstall, Package, Platform } from '../../core/ports/deploy.js';
import type { DeployJobRow, DeployJobsPort } from '../../core/ports/deploy-jobs.js';
import { Graph, graphError, graphFailure, type GraphConfig } from './graph.js';
import { probeIntune, readInstallStatus } from './intune-status.js';

export interface IntuneConfig extends GraphConfig {
  apps: Readonly<Record<string, { appId: string; groupId: string }>>;
  assign: 'device' | 'user';
  installTimeoutMs: number;
  /** Least time between two reads of one job's install status (default 30 s). */
  pollMs?: number;
  /** The catalog (itguard's own, shared with the embedded adapter). */
  catalog?: Pick<DeployPort, 'catalog' | 'getPackage'>;
  /** The deploy_jobs records (the store's port). */
  jobs?: DeployJobsPort;
  /** The address the directory holds for a username: their UPN in Entra. */
  upnOf?: (username: string, o: CallOpts) => Promise<string | undefined>;
}

const PLATFORMS: Record<string, Platform> = { windows: 'windows', macos: 'macos', linux: 'linux' };
export class IntuneDeploy implements DeployPort {
  readonly kind = 'intune';
  readonly graph: Graph;
  constructor(private readonly cfg: IntuneConfig) {
    this.graph = new Graph(cfg);
  }

  private now(): number {
    return (this.cfg.now ?? Date.now)();
  }

  private need<T>(v: T | undefined, what: string): T {
    if (!v) throw new BackendError(`deploy intune: ${what} is not available in this process`, false);
    return v;
  }

  async catalog(query: string | undefined, o: CallOpts): Promise<(Package & { seatsUsed: number })[]> {
    const all = await this.need(this.cfg.catalog, 'the catalog').catalog(query, o);
    const jobs = this.cfg.jobs;
    return Promise.all(
      all
        .filter((p) => this.cfg.apps[p.id])
        .map(async (p) => ({ ...p, seatsUsed: jobs ? await jobs.seatsUsed(p.id) : 0 })),
    );
  }

  async getPackage(id: string, o: CallOpts): Promise<Package | undefined> {
    // Security: a catalog id with no Intune app behind it is not installable here (catalog-only installs).
    if (!Object.hasOwn(this.cfg.apps, id)) return undefined;
    return this.need(this.cfg.catalog, 'the catalog').getPackage(id, o);
  }

  async seatsUsed(pkg: string): Promise<number> {
    return this.need(this.cfg.jobs, 'the job store').seatsUsed(pkg);
  }

  async devicesOf(username: string, o: CallOpts): Promise<Device[]> {
    const upn = await this.cfg.upnOf?.(username, o);
    if (!upn) return [];
    const res = await this.graph.send(
      {
        method: 'GET',
        path: `/v1.0/users/${encodeURIComponent(upn)}/managedDevices`,
        query: { $select: 'id,deviceName,operatingSystem,model,userPrincipalName,azureADDeviceId' },
        what: `listing the managed devices of ${username}`,
      },
      o,
    );
    if (res.status === 404) return [];
    if (res.status !== 200) throw graphFailure(res, `listing the managed devices of ${username}`);
    const value = obj(res.body).value;
    return (Array.isArray(value) ? value : []).map((d) => toDevice(obj(d), username)).filter((d): d is Device => !!d);
  }

  async getDevice(id: string, o: CallOpts): Promise<Device | undefined> {
    const d = await this.managedDevice(id, o);
    return d && toDevice(d, (str(d.userPrincipalName) ?? '').split('@')[0]!.toLowerCase());
  }

  private async managedDevice(id: string, o: CallOpts): Promise<Record<string, unknown> | undefined> {
    const res = await this.graph.send(
      {
        method: 'GET',
        path: `/v1.0/deviceManagement/managedDevices/${encodeURIComponent(id)}`,
        what: `reading device ${id}`,
      },
      o,
    );
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw graphFailure(res, `reading device ${id}`);
    return obj(res.body);
  }

  async install(i: NewInstall, o: WriteOpts): Promise<InstallJob> {
    const jobs = this.need(this.cfg.jobs, 'the job store');
    const app = this.cfg.apps[i.package];
    if (!app)
      throw new BackendError(`package: ${i.package} has no Intune app in deploy.apps`, false, { field: 'package' });
    const pkg = await this.getPackage(i.package, o);
    const job = await jobs.open(
      {
        request_id: o.requestId,
        backend: 'intune',
        username: i.username,
        device_id: i.deviceId,
        package: i.package,
        version: i.version,
        app_id: app.appId,
        group_id: app.groupId,
      },
      pkg?.licensePool ?? null,
    );
    if (!job) throw new BackendError(`licence pool of ${i.package} is exhausted (${pkg?.licensePool} seats)`, false);
    if (job.state === 'requested') await this.deliver(job, o);
    return toJob((await jobs.get(job.id))!);
  }

  /** The Graph writes of a requested job: group membership (idempotent), then a device sync (best effort). */
  private async deliver(job: DeployJobRow, o: CallOpts): Promise<void> {
    const jobs = this.cfg.jobs!;
    const what = `adding ${job.device_id} to the assignment group of ${job.package}`;
    let memberId: string;
    try {
      memberId = await this.memberId(job, o);
      const res = await this.graph.send(
        {
          method: 'POST',
          path: `/v1.0/groups/${encodeURIComponent(job.group_id)}/members/$ref`,
          body: { '@odata.id': `${this.graph.graphUrl.origin}/v1.0/directoryObjects/${memberId}` },
          what,
        },
        o,
      );
      // "One or more added object references already exist": the member is in the group already, which is the goal.
      const already = res.status === 400 && /already exist/i.test(graphError(res).message);
      if (res.status !== 204 && !already) throw graphFailure(res, what);
    } catch (e) {
      // A refusal that will not change (permission, unknown group) fails the job; anything else leaves it requested
      // for the retry to resume.
      if (e instanceof BackendError && !e.retryable) await jobs.update(job.id, 'failed', { error: e.message });
      throw e;
    }
    let note: string | null = null;
    const sync = await this.graph
      .send(
        {
          method: 'POST',
          path: `/v1.0/deviceManagement/managedDevices/${encodeURIComponent(job.device_id)}/syncDevice`,
          what: `syncing ${job.device_id}`,
        },
        o,
      )
      .catch((e: unknown) => (e instanceof BackendError ? e : undefined));
    if (!sync || sync instanceof BackendError || sync.status !== 204)
      note = 'device sync not accepted; the device installs at its next regular check-in';
    await jobs.update(job.id, 'pending', { note });
  }

  private async memberId(job: DeployJobRow, o: CallOpts): Promise<string> {
    if (this.cfg.assign === 'user') {
      const upn = await this.cfg.upnOf?.(job.username, o);
      if (!upn) throw new BackendError(`user: ${job.username} has no address to find them in Entra`, false);
      const res = await this.graph.send(
        {
          method: 'GET',
          path: `/v1.0/users/${encodeURIComponent(upn)}`,
          query: { $select: 'id' },
          what: `finding ${job.username} in Entra`,
        },
        o,
      );
      if (res.status !== 200) throw graphFailure(res, `finding ${job.username} in Entra`);
      return str(obj(res.body).id)!;
    }
    const d = await this.managedDevice(job.device_id, o);
    const aad = d && str(d.azureADDeviceId);
    if (!aad) throw new BackendError(`device_id: ${job.device_id} is not registered in Entra ID`, false);
    const res = await this.graph.send(
      {
        method: 'GET',
        path: '/v1.0/devices',
        query: { $filter: `deviceId eq '${aad.replace(/'/g, "''")}'`, $select: 'id' },
        what: `finding ${job.device_id} in Entra`,
      },
      o,
    );
    if (res.status !== 200) throw graphFailure(res, `finding ${job.device_id} in Entra`);
    const id = str(obj((obj(res.body).value as unknown[] | undefined)?.[0]).id);
    if (!id) throw new BackendError(`device_id: ${job.device_id} has no Entra device object yet; retry shortly`, true);
    return id;
  }

  /**
   * The job of a request, its state read afresh from Intune when due. A job still `requested` (nothing reached
   * Intune yet) is undefined: the request's retry resumes it.
   */
  async findByRequest(requestId: string, o: CallOpts): Promise<InstallJob | undefined> {
    const j = await this.jobState(requestId, o);
    return j && j.state !== 'requested' ? j : undefined;
  }

  /** The console's and request_status's view of a job, in any state (undefined: no job for this request). */
  async jobState(requestId: string, o: CallOpts): Promise<InstallJob | undefined> {
    const jobs = this.cfg.jobs;
    const row = jobs && (await jobs.byRequest(requestId));
    if (!jobs || !row) return undefined;
    if (row.state === 'pending') {
      const now = this.now();
      if (now - row.created_at > this.cfg.installTimeoutMs) {
        await jobs.update(row.id, 'timed_out', {
          error: `no final install state within ${Math.round(this.cfg.installTimeoutMs / 3600_000)} h`,
        });
      } else if (now - (row.checked_at ?? 0) >= (this.cfg.pollMs ?? 30_000)) {
        await this.check(row, o).catch(() => undefined); // the stored state stands when Intune cannot be asked
      }
    }
    return toJob((await jobs.get(row.id))!);
  }

  private async check(row: DeployJobRow, o: CallOpts): Promise<void> {
    const r = await readInstallStatus(this.graph, row, o);
    await this.cfg.jobs!.update(row.id, r.state, { checked: true, ...(r.error ? { error: r.error } : {}) });
  }

  async probe(o: CallOpts): Promise<ProbeReport> {
    return probeIntune(this.graph, this.cfg.apps, this.cfg.assign, o);
  }
}

function toDevice(d: Record<string, unknown>, owner: string): Device | undefined {
  const platform = PLATFORMS[(str(d.operatingSystem) ?? '').toLowerCase()];
  const id = str(d.id);
  if (!platform || !id) return undefined; // phones and tablets are not install targets of the catalog
  return { id, owner, hostname: str(d.deviceName) ?? id, platform, model: str(d.model) ?? '' };
}

export const toJob = (r: DeployJobRow): InstallJob => ({
  id: r.id,
  username: r.username,
  deviceId: r.device_id,
  package: r.package,
  version: r.version,
  state: r.state,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
  ...(r.error ? { error: r.error } : {}),
});
