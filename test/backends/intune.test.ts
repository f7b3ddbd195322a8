/**
 * The Intune deploy adapter against the loopback Graph stand-in (test/helpers/graph-standin.ts): client-credentials
 * tokens (cached, refreshed after expiry, never in an error), managed devices, group membership with the
 * already-a-member and replication-delay 400s, 429 + Retry-After, device sync, and install jobs tracked from
 * requested → pending → installed | failed | timed out by the install status report; then end to end through a
 * real MCP client: an approved install reaches Intune once, reports pending, then installed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { BackendError } from '../../src/core/backend.js';
import type { IntuneDeploy } from '../../src/tools/software/intune.js';
import { codeOf, connect, testApp, textOf } from '../helpers/harness.js';
import { demoPolicy, type BackendsInput } from '../helpers/policy-builder.js';
import { GraphStandin } from '../helpers/graph-standin.js';

const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const SECRET = 'graph~client~secret~value~0123456789';
const ACROBAT_APP = 'a0000000-0000-0000-0000-00000000ac01';
const ACROBAT_GROUP = 'b0000000-0000-0000-0000-00000000ac01';
const VISIO_APP = 'a0000000-0000-0000-0000-000000000d15';
const VISIO_GROUP = 'b0000000-0000-0000-0000-000000000d15';
const JDOE_LAPTOP = 'd1000000-0000-0000-0000-000000000001';
const ASMITH_LAPTOP = 'd2000000-0000-0000-0000-000000000002';

let graph: GraphStandin;
let app: App | undefined;
let clock = Date.now();
beforeEach(async () => {
  clock = Date.now();
  graph = await GraphStandin.start(TENANT, CLIENT, SECRET);
  graph.users.set('jdoe@northwind.example', 'u-jdoe');
  graph.users.set('asmith@northwind.example', 'u-asmith');
  graph.devices.push(
    {
      id: JDOE_LAPTOP,
      deviceName: 'NW-LT-1001',
      operatingSystem: 'Windows',
      model: 'Latitude 7440',
      userPrincipalName: 'jdoe@northwind.example',
      azureADDeviceId: 'aad-jdoe-1',
      objectId: 'obj-jdoe-1',
    },
    {
      id: 'd1000000-0000-0000-0000-0000000phone',
      deviceName: 'Jane iPhone',
      operatingSystem: 'iOS',
      model: 'iPhone 15',
      userPrincipalName: 'jdoe@northwind.example',
      azureADDeviceId: 'aad-jdoe-2',
      objectId: 'obj-jdoe-2',
    },
    {
      id: ASMITH_LAPTOP,
      deviceName: 'NW-LT-1002',
      operatingSystem: 'macOS',
      model: 'MacBook Pro',
      userPrincipalName: 'asmith@northwind.example',
      azureADDeviceId: 'aad-asmith-1',
      objectId: 'obj-asmith-1',
    },
  );
  graph.groups.set(ACROBAT_GROUP, { displayName: 'Intune - Acrobat required', members: new Set() });
  graph.groups.set(VISIO_GROUP, { displayName: 'Intune - Visio required', members: new Set() });
  graph.apps.set(ACROBAT_APP, {
    displayName: 'Adobe Acrobat Pro',
    group: ACROBAT_GROUP,
    script: { pendingReads: 1, outcome: 'Installed' },
  });
  graph.apps.set(VISIO_APP, {
    displayName: 'Visio',
    group: VISIO_GROUP,
    script: {
      pendingReads: 0,
      outcome: 'Failed',
      hexErrorCode: '0x87D1041C',
      detail: 'The application was not detected after installation completed successfully',
    },
  });
});
afterEach(async () => {
  app?.close();
  app = undefined;
  await graph.close();
});

type IntuneInput = Extract<NonNullable<BackendsInput['deploy']>, { kind: 'intune' }>;
const intunePolicy = (extra: Partial<IntuneInput> = {}) =>
  demoPolicy()
    .backend('deploy', {
      kind: 'intune',
      tenant_id: TENANT,
      client_id: CLIENT,
      client_secret_env: 'INTUNE_SECRET',
      graph_url: graph.url,
      login_url: graph.url,
      apps: {
        'adobe-acrobat-pro': { app_id: ACROBAT_APP, group_id: ACROBAT_GROUP },
        'microsoft-visio': { app_id: VISIO_APP, group_id: VISIO_GROUP },
      },
      ...extra,
    })
    .approvals({ wait_seconds: 0 })
    .parse();

function open(extra: Partial<IntuneInput> = {}): { app: App; intune: IntuneDeploy } {
  app = testApp({
    policy: intunePolicy(extra),
    env: { INTUNE_SECRET: SECRET },
    now: () => clock,
    cloud: { deployPollMs: 0, retryBaseMs: 5 },
  });
  return { app, intune: app.backends.deploy as IntuneDeploy };
}
const live = () => ({ signal: new AbortController().signal });
const tokenCalls = () => graph.seen.filter((s) => s.path.endsWith('/oauth2/v2.0/token')).length;
const install = { username: 'jdoe', deviceId: JDOE_LAPTOP, package: 'adobe-acrobat-pro', version: '2025.001' };

describe('Intune adapter', () => {
  it('lists the user’s managed computers with one cached token, refreshed after it expires', async () => {
    const { intune } = open();
    expect((await intune.devicesOf('jdoe', live())).map((d) => [d.id, d.platform])).toEqual([[JDOE_LAPTOP, 'windows']]);
    await intune.devicesOf('asmith', live());
    expect(tokenCalls()).toBe(1);
    graph.expireTokens();
    expect(await intune.devicesOf('jdoe', live())).toHaveLength(1);
    expect(tokenCalls()).toBe(2);
    expect(
      graph.seen
        .filter((s) => s.path.endsWith('/token'))
        .every((s) => (s.body as { scope: string }).scope === `${graph.url}/.default`),
    ).toBe(true);
    // Only mapped catalog ids are installable.
    expect((await intune.catalog(undefined, live())).map((p) => p.id).sort()).toEqual([
      'adobe-acrobat-pro',
      'microsoft-visio',
    ]);
    expect(await intune.getPackage('zoom', live())).toBeUndefined();
  });

  it('a wrong client secret is a clear error that names neither the secret nor a token', async () => {
    app = testApp({ policy: intunePolicy(), env: { INTUNE_SECRET: 'wrong-secret' }, cloud: { retryBaseMs: 5 } });
    const e = (await (app.backends.deploy as IntuneDeploy)
      .devicesOf('jdoe', live())
      .catch((x: unknown) => x)) as BackendError;
    expect(e).toBeInstanceOf(BackendError);
    expect(e.message).toMatch(/AADSTS7000215.*client_secret_env/);
    expect(`${e.message}${JSON.stringify(e.details)}`).not.toMatch(/wrong-secret|eyJ0eXAi/);
  });

  it('installs through replication delay, already-member and 429, then reads pending → installed', async () => {
    const { intune } = open();
    graph.replicationDelay(2);
    graph.failNext(
      1,
      {
        status: 429,
        headers: { 'retry-after': '0' },
        body: { error: { code: 'TooManyRequests', message: 'Too many requests' } },
      },
      (s) => s.path.endsWith('/syncDevice'),
    );
    const job = await intune.install(install, { ...live(), requestId: 'req-acro-1' });
    expect(job).toMatchObject({ state: 'pending', deviceId: JDOE_LAPTOP });
    expect([...graph.groups.get(ACROBAT_GROUP)!.members]).toEqual(['obj-jdoe-1']);
    expect(graph.memberAdds).toHaveLength(3); // two replication-delay 400s, then 204
    expect(graph.syncs).toEqual([JDOE_LAPTOP]);
    // The same request again: the job as it is, no new Graph write.
    const writes = graph.memberAdds.length;
    expect((await intune.install(install, { ...live(), requestId: 'req-acro-1' })).id).toBe(job.id);
    expect(graph.memberAdds).toHaveLength(writes);
    expect((await intune.findByRequest('req-acro-1', live()))?.state).toBe('pending');
    expect((await intune.findByRequest('req-acro-1', live()))?.state).toBe('installed');
    // Another request for a device already in the group: "already a member" is success.
    const j2 = await intune.install(install, { ...live(), requestId: 'req-acro-2' });
    expect(j2.state).toBe('pending');
    expect(graph.memberAdds.length).toBe(writes + 1);
  });

  it('reports the platform’s error for a failed install and times out a job that never ends', async () => {
    const { intune } = open();
    await intune.install(
      {
        ...install,
        package: 'microsoft-visio',
        version: (await intune.getPackage('microsoft-visio', live()))!.versions[0]!,
      },
      { ...live(), requestId: 'req-visio' },
    );
    const failed = await intune.findByRequest('req-visio', live());
    expect(failed).toMatchObject({ state: 'failed', error: expect.stringContaining('0x87D1041C') });
    graph.apps.get(ACROBAT_APP)!.script.pendingReads = 1_000;
    await intune.install(install, { ...live(), requestId: 'req-slow' });
    clock += 73 * 3600_000;
    expect(await intune.findByRequest('req-slow', live())).toMatchObject({ state: 'timed_out' });
  });

  it('a missing permission fails the job without a write; a throttled add is resumed by the retry, once', async () => {
    const { intune } = open();
    graph.permissions.delete('GroupMember.ReadWrite.All');
    const e = (await intune
      .install(install, { ...live(), requestId: 'req-perm' })
      .catch((x: unknown) => x)) as BackendError;
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/Authorization_RequestDenied.*application permission/);
    expect(graph.groups.get(ACROBAT_GROUP)!.members.size).toBe(0);
    graph.permissions.add('GroupMember.ReadWrite.All');

    graph.failNext(
      1,
      {
        status: 429,
        headers: { 'retry-after': '3600' },
        body: { error: { code: 'TooManyRequests', message: 'Too many requests' } },
      },
      (s) => s.path.endsWith('/members/$ref'),
    );
    const t = (await intune
      .install(install, { ...live(), requestId: 'req-429' })
      .catch((x: unknown) => x)) as BackendError;
    expect(t.retryable).toBe(true);
    expect(t.details).toMatchObject({ rate_limited: true, retry_after_s: 3600 });
    expect(await intune.findByRequest('req-429', live())).toBeUndefined(); // nothing reached Intune yet
    expect((await intune.install(install, { ...live(), requestId: 'req-429' })).state).toBe('pending');
    expect(graph.groups.get(ACROBAT_GROUP)!.members.size).toBe(1);
  });

  it('licence seats: a full pool refuses; a job abandoned before reaching Intune stops holding its seat after an hour', async () => {
    const { app, intune } = open();
    app.sqlite.db.prepare('UPDATE catalog SET license_pool = 1 WHERE id = ?').run('adobe-acrobat-pro');
    graph.failNext(
      1,
      {
        status: 429,
        headers: { 'retry-after': '3600' },
        body: { error: { code: 'TooManyRequests', message: 'x' } },
      },
      (q) => q.path.endsWith('/members/$ref'),
    );
    await intune.install(install, { ...live(), requestId: 'req-stuck' }).catch(() => undefined); // stays requested
    const full = (await intune
      .install(install, { ...live(), requestId: 'req-next' })
      .catch((x: unknown) => x)) as BackendError;
    expect(full.message).toMatch(/licence pool of adobe-acrobat-pro is exhausted/);
    clock += 2 * 3600_000;
    expect((await intune.install(install, { ...live(), requestId: 'req-next' })).state).toBe('pending');
    expect(await intune.seatsUsed('adobe-acrobat-pro')).toBe(1);
  });

  it('assign: user adds the user (found by UPN) to the group instead of the device', async () => {
    const { intune } = open({ assign: 'user' });
    expect((await intune.install(install, { ...live(), requestId: 'req-user' })).state).toBe('pending');
    expect([...graph.groups.get(ACROBAT_GROUP)!.members]).toEqual(['u-jdoe']);
    expect(await intune.findByRequest('req-user', live())).toMatchObject({ state: 'pending' });
    expect(await intune.findByRequest('req-user', live())).toMatchObject({ state: 'installed' });
  });

  it('probes the token, devices, apps and groups without writing', async () => {
    const { intune } = open();
    graph.permissions.delete('GroupMember.ReadWrite.All');
    const r = await intune.probe(live());
    expect(r.ok).toBe(false);
    // The token's roles claim names the missing application permission; reading the groups fails on it too.
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'application permission GroupMember.ReadWrite.All',
      'assignment group of adobe-acrobat-pro',
      'assignment group of microsoft-visio',
    ]);
    expect(r.checks.find((c) => c.name === 'app of adobe-acrobat-pro')).toMatchObject({
      ok: true,
      detail: 'Adobe Acrobat Pro',
    });
    expect(graph.seen.filter((s) => s.method === 'POST' && !s.path.endsWith('/token'))).toHaveLength(0);
  });
});

describe('software_install through a real MCP client with Intune', () => {
  it('an approved install reaches Intune once and reports pending, then installed (request_status and replay)', async () => {
    const { app } = open();
    const c = await connect(app);
    try {
      const args = { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'needs to sign vendor contracts' };
      const r = await c.call('software_install', args);
      expect(codeOf(r)).toBe('APPROVAL_PENDING');
      expect(graph.memberAdds).toHaveLength(0); // nothing reaches Intune before the approval
      const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
      expect(JSON.parse(app.sqlite.approvals.get(id)!.args)).toMatchObject({ device_id: JDOE_LAPTOP });
      expect(app.sqlite.approvals.decide(id, true, { name: 'console:it-approver' }, undefined)).toMatchObject({
        ok: true,
      });
      await app.executorPass();
      const done = app.sqlite.approvals.get(id)!;
      expect(done.status).toBe('succeeded');
      expect(done.result).toMatch(/requested and is pending — not installed yet/);
      expect(done.result).not.toMatch(/eyJ0eXAi/);
      expect(graph.memberAdds).toHaveLength(1);

      const s1 = await c.call('request_status', { request_id: id });
      expect((s1.structuredContent as { job: { state: string } }).job.state).toBe('pending');
      const replay = await c.call('software_install', args);
      expect(textOf(replay)).toMatch(/Replay/);
      expect(textOf(replay)).toMatch(/Now: Install job JOB-\w+: adobe-acrobat-pro 2025.001 .* is installed/);
      expect((replay.structuredContent as { state: string }).state).toBe('installed');
      const s2 = await c.call('request_status', { request_id: id });
      expect(textOf(s2)).toMatch(/install job JOB-\w+: installed/);
      expect(graph.memberAdds).toHaveLength(1);
      expect(graph.syncs).toHaveLength(1);
    } finally {
      await c.close();
    }
  });

  it('catalog-only and device ownership are refused before any Graph write', async () => {
    const { app } = open();
    const c = await connect(app);
    try {
      const zoom = await c.call('software_install', { user: 'jdoe', package: 'zoom', reason: 'calls' });
      expect(codeOf(zoom)).toBe('INVALID_ARGUMENT');
      const other = await c.call('software_install', {
        user: 'jdoe',
        package: 'adobe-acrobat-pro',
        device_id: ASMITH_LAPTOP,
        reason: 'pdf',
      });
      expect(codeOf(other)).toBe('POLICY_DENIED');
      expect(textOf(other)).toMatch(/does not belong to jdoe/);
      expect(graph.seen.filter((s) => s.method === 'POST' && !s.path.endsWith('/token'))).toHaveLength(0);
    } finally {
      await c.close();
    }
  });
});
