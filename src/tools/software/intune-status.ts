/**
 * Intune's side of an install job that the adapter only reads: the install status report, and the probe
 * (`policy check --probe`), which writes nothing. The probe reads the app-only token's `roles` claim (the
 * application permissions granted to the app registration, as the identity platform issued them) and names any
 * that is missing, then reads one managed device and each mapped app and assignment group.
 */
import { obj, str } from '../cloud-http.js';
import type { CallOpts, ProbeReport } from '../../core/backend.js';
import type { DeployJobRow, DeployJobState } from '../../core/ports/deploy-jobs.js';
import { graphFailure, type Graph } from './graph.js';

const SELECT = [
  'DeviceId',
  'DeviceName',
  'UserPrincipalName',
  'InstallState',
  'InstallStateDetail',
  'ErrorCode',
  'HexErrorCode',
];

/** The job's state as `getDeviceInstallStatusReport` (beta) says: installed, failed (hex error: detail) or pending. */
export async function readInstallStatus(
  graph: Graph,
  row: DeployJobRow,
  o: CallOpts,
): Promise<{ state: DeployJobState; error?: string }> {
  const what = `reading the install status of ${row.package} on ${row.device_id}`;
  const res = await graph.send(
    {
      method: 'POST',
      path: '/beta/deviceManagement/reports/getDeviceInstallStatusReport',
      // app_id is a GUID (policy) and device_id a managed device GUID (tool schema): nothing to escape.
      body: {
        select: SELECT,
        filter: `(ApplicationId eq '${row.app_id}') and (DeviceId eq '${row.device_id}')`,
        top: 50,
      },
      what,
    },
    o,
  );
  if (res.status !== 200) throw graphFailure(res, what);
  const b = obj(res.body);
  const cols = (Array.isArray(b.Schema) ? b.Schema : []).map((c) => str(obj(c).Column) ?? '');
  const first = (Array.isArray(b.Values) ? b.Values : [])[0];
  const at = (c: string): unknown => (Array.isArray(first) ? first[cols.indexOf(c)] : undefined);
  const state = String(at('InstallState') ?? '').toLowerCase();
  if (state === 'installed') return { state: 'installed' };
  if (state === 'failed') {
    const hex = str(at('HexErrorCode')) ?? (at('ErrorCode') !== undefined ? String(at('ErrorCode')) : 'unknown');
    const detail = str(at('InstallStateDetail')) ?? '';
    return { state: 'failed', error: `${hex}${detail ? `: ${detail}` : ''}` };
  }
  return { state: 'pending' }; // no row yet (not assigned yet), Pending, NotInstalled, Unknown …
}

/** The application permissions the adapter needs for `assign`; the sync permission is optional (noted, not failed). */
export const requiredRoles = (assign: 'device' | 'user'): string[] => [
  'DeviceManagementManagedDevices.Read.All',
  'DeviceManagementApps.Read.All',
  'GroupMember.ReadWrite.All',
  assign === 'device' ? 'Device.Read.All' : 'User.Read.All',
];
const OPTIONAL_ROLE = 'DeviceManagementManagedDevices.PrivilegedOperations.All';

/** The `roles` claim of an app-only access token, or undefined when the token is not a readable JWT. */
function rolesOf(token: string): string[] | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as unknown;
    const roles = obj(payload).roles;
    return Array.isArray(roles) ? roles.filter((r): r is string => typeof r === 'string') : [];
  } catch {
    return undefined;
  }
}

export async function probeIntune(
  graph: Graph,
  apps: Readonly<Record<string, { appId: string; groupId: string }>>,
  assign: 'device' | 'user',
  o: CallOpts,
): Promise<ProbeReport> {
  const checks: ProbeReport['checks'] = [];
  const step = async (name: string, run: () => Promise<string | undefined>): Promise<boolean> => {
    try {
      const detail = await run();
      checks.push({ name, ok: true, ...(detail ? { detail } : {}) });
      return true;
    } catch (e) {
      checks.push({ name, ok: false, detail: e instanceof Error ? e.message : String(e) });
      return false;
    }
  };
  const get = async (path: string, what: string, query?: Record<string, string>) => {
    const res = await graph.send({ method: 'GET', path, what, ...(query ? { query } : {}) }, o);
    if (res.status !== 200) throw graphFailure(res, what);
    return obj(res.body);
  };
  let token = '';
  const d = { signal: o.signal, caller: o.signal, endsAt: Date.now() + 20_000, timeoutMs: 20_000 };
  if (!(await step('token (client credentials)', async () => void (token = await graph.token(true, d)))))
    return report(graph, checks);
  const roles = rolesOf(token);
  if (roles) {
    for (const role of requiredRoles(assign))
      checks.push(
        roles.includes(role)
          ? { name: `application permission ${role}`, ok: true }
          : { name: `application permission ${role}`, ok: false, detail: 'not granted (admin consent missing?)' },
      );
    checks.push({
      name: `application permission ${OPTIONAL_ROLE} (optional: device sync)`,
      ok: true,
      detail: roles.includes(OPTIONAL_ROLE) ? 'granted' : 'not granted: devices install at their next check-in',
    });
  }
  await step('read managed devices', async () => {
    await get('/v1.0/deviceManagement/managedDevices', 'listing managed devices', { $top: '1', $select: 'id' });
    return undefined;
  });
  for (const [id, a] of Object.entries(apps)) {
    await step(`app of ${id}`, async () =>
      str(
        (await get(`/v1.0/deviceAppManagement/mobileApps/${a.appId}`, `reading the Intune app of ${id}`)).displayName,
      ),
    );
    await step(`assignment group of ${id}`, async () =>
      str(
        (await get(`/v1.0/groups/${a.groupId}`, `reading the assignment group of ${id}`, { $select: 'id,displayName' }))
          .displayName,
      ),
    );
  }
  return report(graph, checks);
}

const report = (graph: Graph, checks: ProbeReport['checks']): ProbeReport => ({
  backend: 'deploy:intune',
  target: graph.graphUrl.origin,
  ok: checks.every((c) => c.ok),
  checks,
});
