/**
 * A loopback stand-in for Microsoft Graph and the Microsoft identity platform (the parts the Intune adapter uses),
 * following the documented shapes: the client-credentials token endpoint (`/{tenant}/oauth2/v2.0/token`, AADSTS
 * errors), bearer tokens that expire (401 InvalidAuthenticationToken), Graph's error envelope
 * (`{error: {code, message, innerError}}`), application permissions (403 Authorization_RequestDenied when one is
 * missing), users and their managed devices, Entra device objects, group membership by `members/$ref` (204; the
 * already-a-member 400), `syncDevice` (204), and the beta install status report (`Schema` + `Values`) whose rows
 * move on as it is read: a device added to an app's assignment group is Pending for `pendingReads` reads, then
 * Installed, or Failed with the scripted hex error.
 *
 * Scripted faults: `failNext(n, {status: 429, headers: {'retry-after': '1'}})` (throttling), `replicationDelay(n)`
 * (the next n membership adds answer the "does not exist" 400 of a just-created object), `expireTokens()`.
 */
import { randomBytes } from 'node:crypto';
import { StandinServer, type Reply, type Seen } from './standin-server.js';

export type GraphPermission =
  | 'DeviceManagementManagedDevices.Read.All'
  | 'DeviceManagementManagedDevices.PrivilegedOperations.All'
  | 'DeviceManagementApps.Read.All'
  | 'GroupMember.ReadWrite.All'
  | 'Device.Read.All'
  | 'User.Read.All';
export const ALL_GRAPH_PERMISSIONS: GraphPermission[] = [
  'DeviceManagementManagedDevices.Read.All',
  'DeviceManagementManagedDevices.PrivilegedOperations.All',
  'DeviceManagementApps.Read.All',
  'GroupMember.ReadWrite.All',
  'Device.Read.All',
  'User.Read.All',
];

export interface GraphDevice {
  id: string;
  deviceName: string;
  operatingSystem: string;
  model: string;
  userPrincipalName: string;
  azureADDeviceId: string;
  /** The Entra device object's id. */
  objectId: string;
}

export interface InstallScript {
  pendingReads: number;
  outcome: 'Installed' | 'Failed';
  hexErrorCode?: string;
  detail?: string;
}

const gerr = (status: number, code: string, message: string): Reply => ({
  status,
  body: {
    error: {
      code,
      message,
      innerError: {
        date: new Date().toISOString(),
        'request-id': randomBytes(8).toString('hex'),
        'client-request-id': randomBytes(8).toString('hex'),
      },
    },
  },
});

export class GraphStandin extends StandinServer {
  permissions = new Set<GraphPermission>(ALL_GRAPH_PERMISSIONS);
  readonly users = new Map<string, string>(); // upn → object id
  readonly devices: GraphDevice[] = [];
  readonly groups = new Map<string, { displayName: string; members: Set<string> }>();
  readonly apps = new Map<string, { displayName: string; group: string; script: InstallScript }>();
  readonly syncs: string[] = [];
  readonly tokens = new Set<string>();
  tokenTtlS = 3599;
  private delays = 0;
  private reads = new Map<string, number>();

  constructor(
    readonly tenant: string,
    readonly clientId: string,
    readonly secret: string,
  ) {
    super();
  }

  static async start(tenant: string, clientId: string, secret: string): Promise<GraphStandin> {
    return new GraphStandin(tenant, clientId, secret).listen();
  }

  replicationDelay(n: number): void {
    this.delays = n;
  }

  expireTokens(): void {
    this.tokens.clear();
  }

  /** Membership adds that reached the group (not counting the already-member 400s). */
  get memberAdds(): Seen[] {
    return this.seen.filter((s) => s.method === 'POST' && s.path.endsWith('/members/$ref'));
  }

  protected handle(s: Seen): Reply {
    if (s.method === 'POST' && s.path === `/${this.tenant}/oauth2/v2.0/token`) return this.token(s);
    const bearer = s.authorization?.replace(/^Bearer /, '');
    if (!bearer || !this.tokens.has(bearer))
      return gerr(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.');
    const need = (p: GraphPermission) =>
      this.permissions.has(p)
        ? undefined
        : gerr(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
    const p = s.path.split('/').filter(Boolean);
    const [ver, a, b, c, d] = p;
    if (ver === 'v1.0' && a === 'users' && b) {
      const id = this.users.get(b.toLowerCase());
      if (!id)
        return gerr(
          404,
          'Request_ResourceNotFound',
          `Resource '${b}' does not exist or one of its queried reference-property objects are not present.`,
        );
      if (c === 'managedDevices')
        return (
          need('DeviceManagementManagedDevices.Read.All') ?? {
            status: 200,
            body: { value: this.devices.filter((x) => x.userPrincipalName.toLowerCase() === b.toLowerCase()).map(pub) },
          }
        );
      return need('User.Read.All') ?? { status: 200, body: { id } };
    }
    if (ver === 'v1.0' && a === 'deviceManagement' && b === 'managedDevices') {
      if (!c)
        return (
          need('DeviceManagementManagedDevices.Read.All') ?? {
            status: 200,
            body: { value: this.devices.slice(0, 1).map(pub) },
          }
        );
      const dev = this.devices.find((x) => x.id === c);
      if (!dev)
        return gerr(404, 'ResourceNotFound', `{"message":"Resource not found for the segment 'managedDevices'."}`);
      if (d === 'syncDevice' && s.method === 'POST') {
        const denied = need('DeviceManagementManagedDevices.PrivilegedOperations.All');
        if (denied) return denied;
        this.syncs.push(c);
        return { status: 204 };
      }
      return need('DeviceManagementManagedDevices.Read.All') ?? { status: 200, body: pub(dev) };
    }
    if (ver === 'v1.0' && a === 'devices' && !b) {
      const m = /^deviceId eq '([^']+)'$/.exec(s.query.get('$filter') ?? '');
      if (!m) return gerr(400, 'Request_UnsupportedQuery', 'Unsupported Query.');
      return (
        need('Device.Read.All') ?? {
          status: 200,
          body: { value: this.devices.filter((x) => x.azureADDeviceId === m[1]).map((x) => ({ id: x.objectId })) },
        }
      );
    }
    if (ver === 'v1.0' && a === 'groups' && b) {
      const g = this.groups.get(b);
      if (!g)
        return gerr(
          404,
          'Request_ResourceNotFound',
          `Resource '${b}' does not exist or one of its queried reference-property objects are not present.`,
        );
      if (c === 'members' && d === '$ref' && s.method === 'POST') return this.addMember(s, g, need);
      return need('GroupMember.ReadWrite.All') ?? { status: 200, body: { id: b, displayName: g.displayName } };
    }
    if (ver === 'v1.0' && a === 'deviceAppManagement' && b === 'mobileApps' && c) {
      const app = this.apps.get(c);
      if (!app) return gerr(404, 'ResourceNotFound', 'Resource not found');
      return need('DeviceManagementApps.Read.All') ?? { status: 200, body: { id: c, displayName: app.displayName } };
    }
    if (
      ver === 'beta' &&
      s.path === '/beta/deviceManagement/reports/getDeviceInstallStatusReport' &&
      s.method === 'POST'
    )
      return need('DeviceManagementApps.Read.All') ?? this.report(s);
    return gerr(400, 'BadRequest', `Resource not found for the segment '${a ?? ''}'.`);
  }

  private token(s: Seen): Reply {
    const f = s.body as Record<string, string>;
    if (f.grant_type !== 'client_credentials' || !f.scope?.endsWith('/.default'))
      return {
        status: 400,
        body: {
          error: 'invalid_request',
          error_description: 'AADSTS900144: The request body must contain the following parameter: grant_type.',
        },
      };
    if (f.client_id !== this.clientId)
      return {
        status: 400,
        body: {
          error: 'unauthorized_client',
          error_description: `AADSTS700016: Application with identifier '${f.client_id}' was not found in the directory.`,
        },
      };
    if (f.client_secret !== this.secret)
      return {
        status: 401,
        body: {
          error: 'invalid_client',
          error_description:
            'AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.',
        },
      };
    // An app-only access token: a JWT whose `roles` claim lists the application permissions granted (consented).
    const claims = {
      aud: 'https://graph.microsoft.com',
      tid: this.tenant,
      appid: this.clientId,
      roles: [...this.permissions],
    };
    const t = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${randomBytes(24).toString('base64url')}`;
    this.tokens.add(t);
    return {
      status: 200,
      body: { token_type: 'Bearer', expires_in: this.tokenTtlS, ext_expires_in: this.tokenTtlS, access_token: t },
    };
  }

  private addMember(s: Seen, g: { members: Set<string> }, need: (p: GraphPermission) => Reply | undefined): Reply {
    const denied = need('GroupMember.ReadWrite.All');
    if (denied) return denied;
    const ref = String((s.body as Record<string, unknown>)['@odata.id'] ?? '');
    const id = /\/directoryObjects\/([^/]+)$/.exec(ref)?.[1];
    if (!id) return gerr(400, 'Request_BadRequest', 'Invalid URL format specified in @odata.bind for members');
    if (this.delays > 0) {
      this.delays--;
      return gerr(
        400,
        'Request_ResourceNotFound',
        `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
      );
    }
    if (g.members.has(id))
      return gerr(
        400,
        'Request_BadRequest',
        "One or more added object references already exist for the following modified properties: 'members'.",
      );
    g.members.add(id);
    return { status: 204 };
  }

  /** The report's rows for `(ApplicationId eq '…') and (DeviceId eq '…')`, moving on with each read. */
  private report(s: Seen): Reply {
    const b = s.body as { select?: string[]; filter?: string };
    const m = /^\(ApplicationId eq '([^']+)'\) and \(DeviceId eq '([^']+)'\)$/.exec(b.filter ?? '');
    if (!m || !Array.isArray(b.select)) return gerr(400, 'BadRequest', 'Invalid filter clause');
    const [, appId, deviceId] = m;
    const app = this.apps.get(appId!);
    const dev = this.devices.find((x) => x.id === deviceId);
    const schema = b.select.map((c) => ({ Column: c, PropertyType: c === 'ErrorCode' ? 'Int32' : 'String' }));
    const assigned =
      app &&
      dev &&
      (this.groups.get(app.group)?.members.has(dev.objectId) ||
        this.groups.get(app.group)?.members.has(this.users.get(dev.userPrincipalName.toLowerCase()) ?? ''));
    if (!assigned) return { status: 200, body: { TotalRowCount: 0, Schema: schema, Values: [], SessionId: '' } };
    const key = `${appId}/${deviceId}`;
    const n = (this.reads.get(key) ?? 0) + 1;
    this.reads.set(key, n);
    const done = n > app.script.pendingReads;
    const row: Record<string, unknown> = {
      DeviceId: dev.id,
      DeviceName: dev.deviceName,
      UserPrincipalName: dev.userPrincipalName,
      InstallState: done ? app.script.outcome : 'Pending',
      InstallStateDetail: done && app.script.outcome === 'Failed' ? (app.script.detail ?? 'Unknown') : 'None',
      ErrorCode: done && app.script.outcome === 'Failed' ? -2016345060 : 0,
      HexErrorCode: done && app.script.outcome === 'Failed' ? (app.script.hexErrorCode ?? '0x87D1041C') : '0x0',
    };
    return {
      status: 200,
      body: { TotalRowCount: 1, Schema: schema, Values: [b.select.map((c) => row[c] ?? null)], SessionId: '' },
    };
  }
}

const pub = (d: GraphDevice) => ({
  id: d.id,
  deviceName: d.deviceName,
  operatingSystem: d.operatingSystem,
  model: d.model,
  userPrincipalName: d.userPrincipalName,
  azureADDeviceId: d.azureADDeviceId,
});
