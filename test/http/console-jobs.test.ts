/**
 * The approver console shows an executed install's live job state, read through the deployment port (jobState,
 * else findByRequest) within a short deadline, not only the result recorded when the install ran: against the
 * Graph stand-in (Intune: pending, then installed; failed with the platform's error; a report read that never
 * answers) and the embedded deploy (findByRequest; a backend that fails). The router is mounted on a small local
 * express server, as in the console's browser tests.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { consoleRouter } from '../../src/http/console.js';
import { codeOf, connect, policyWith, testApp } from '../helpers/harness.js';
import { GraphStandin } from '../helpers/graph-standin.js';

const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const SECRET = 'graph~client~secret~value~0123456789';
const ACROBAT_APP = 'a0000000-0000-0000-0000-00000000ac01';
const ACROBAT_GROUP = 'b0000000-0000-0000-0000-00000000ac01';
const VISIO_APP = 'a0000000-0000-0000-0000-000000000d15';
const VISIO_GROUP = 'b0000000-0000-0000-0000-000000000d15';
const JDOE_LAPTOP = 'd1000000-0000-0000-0000-000000000001';
const REPORT = '/beta/deviceManagement/reports/getDeviceInstallStatusReport';

let graph: GraphStandin | undefined;
let app: App | undefined;
let srv: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (srv ? srv.close(() => r()) : r()));
  app?.close();
  await graph?.close();
  srv = app = graph = undefined;
});

async function startGraph(): Promise<GraphStandin> {
  graph = await GraphStandin.start(TENANT, CLIENT, SECRET);
  graph.users.set('jdoe@northwind.example', 'u-jdoe');
  graph.devices.push({
    id: JDOE_LAPTOP,
    deviceName: 'NW-LT-1001',
    operatingSystem: 'Windows',
    model: 'Latitude 7440',
    userPrincipalName: 'jdoe@northwind.example',
    azureADDeviceId: 'aad-jdoe-1',
    objectId: 'obj-jdoe-1',
  });
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
  return graph;
}

const intunePolicy = (url: string) =>
  policyWith((y) =>
    y
      .replace(
        'deploy:    { kind: embedded }',
        `deploy:
    kind: intune
    tenant_id: ${TENANT}
    client_id: ${CLIENT}
    client_secret_env: INTUNE_SECRET
    graph_url: "${url}"
    login_url: "${url}"
    apps:
      adobe-acrobat-pro: { app_id: ${ACROBAT_APP}, group_id: ${ACROBAT_GROUP} }
      microsoft-visio: { app_id: ${VISIO_APP}, group_id: ${VISIO_GROUP} }`,
      )
      .replace('wait_seconds: 30', 'wait_seconds: 0'),
  );

/** The console on a local server and a signed-in approver: `live()` fetches the sections the live script merges. */
async function console_(a: App, jobTimeoutMs: number) {
  const web = express();
  web.use('/console', consoleRouter(a, undefined, { jobTimeoutMs }));
  srv = web.listen(0, '127.0.0.1');
  await new Promise<void>((r) => srv!.once('listening', () => r()));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/console`;
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: a.sqlite.tokens.create('it-approver', 'test').token }),
  });
  expect(login.status).toBe(303);
  const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
  return {
    live: async () => {
      const r = await fetch(`${base}/live`, { headers: { cookie } });
      expect(r.status).toBe(200);
      return r.text();
    },
    page: async () => (await fetch(base, { headers: { cookie } })).text(),
  };
}

/** The Outcome cell of the request's row in the recent section. */
function outcome(html: string, id: string): string {
  const row = new RegExp(`<tr data-testid="recent-${id}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';
  return /<td data-testid="outcome">([\s\S]*?)<\/td><\/tr>$/.exec(row)?.[1] ?? '';
}

/** An install approved and run by the executor; returns the approval id. */
async function approvedInstall(a: App, pkg: string): Promise<string> {
  const c = await connect(a);
  try {
    const r = await c.call('software_install', { user: 'jdoe', package: pkg, reason: 'needs it for work' });
    expect(codeOf(r)).toBe('APPROVAL_PENDING');
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    expect(a.sqlite.approvals.decide(id, true, { name: 'console:it-approver' }, undefined)).toMatchObject({ ok: true });
    await a.executorPass();
    expect(a.sqlite.approvals.get(id)!.status).toBe('succeeded');
    return id;
  } finally {
    await c.close();
  }
}

describe('console: live install job state (Intune)', () => {
  it('shows the job as Intune reports it now — pending, then installed — not the result recorded at run time', async () => {
    const g = await startGraph();
    app = testApp({ policy: intunePolicy(g.url), env: { INTUNE_SECRET: SECRET }, cloud: { deployPollMs: 0 } });
    const id = await approvedInstall(app, 'adobe-acrobat-pro');
    expect(app.sqlite.approvals.get(id)!.result).toMatch(/requested and is pending — not installed yet/);
    const c = await console_(app, 2000);

    const first = outcome(await c.live(), id);
    expect(first).toMatch(/data-testid="job-state" data-state="pending"/);
    expect(first).toMatch(/live from the deployment backend/);
    const second = outcome(await c.page(), id);
    expect(second).toMatch(/data-state="installed"/);
    expect(second).toMatch(/Install job <span class="mono">JOB-\w+<\/span>: <strong>installed<\/strong>/);
    expect(second).not.toMatch(/job-note/);
    // The recorded result is what it was: the console read the job, the request row is unchanged.
    expect(app.sqlite.approvals.get(id)!.result).toMatch(/requested and is pending/);
    expect(g.memberAdds).toHaveLength(1);
  });

  it("shows a failed install with the platform's error", async () => {
    const g = await startGraph();
    app = testApp({ policy: intunePolicy(g.url), env: { INTUNE_SECRET: SECRET }, cloud: { deployPollMs: 0 } });
    const id = await approvedInstall(app, 'microsoft-visio');
    const c = await console_(app, 2000);
    const cell = outcome(await c.live(), id);
    expect(cell).toMatch(/data-state="failed"/);
    expect(cell).toMatch(/data-testid="job-error">\(0x87D1041C/);
  });

  it('falls back to the recorded result, with a note, when Intune does not answer within the deadline', async () => {
    const g = await startGraph();
    app = testApp({ policy: intunePolicy(g.url), env: { INTUNE_SECRET: SECRET }, cloud: { deployPollMs: 0 } });
    const id = await approvedInstall(app, 'adobe-acrobat-pro');
    const c = await console_(app, 300);
    g.stallNext(1, (s) => s.path === REPORT);
    const t0 = Date.now();
    const cell = outcome(await c.live(), id);
    expect(Date.now() - t0).toBeLessThan(2000); // the page is not held by the backend
    expect(cell).toMatch(/requested and is pending — not installed yet/);
    expect(cell).toMatch(
      /data-testid="job-note">Live job state unavailable: the deployment backend did not answer within 300 ms; this is the result recorded when the install ran\./,
    );
    expect(cell).not.toMatch(/job-state/);
    // Once Intune answers again, the live state is back.
    expect(outcome(await c.live(), id)).toMatch(/data-testid="job-state"/);
  });
});

/** The embedded backends, without the call waiting for the decision. */
const embedded = () => testApp({ policy: policyWith((y) => y.replace('wait_seconds: 30', 'wait_seconds: 0')) });

describe('console: live install job state (embedded deploy)', () => {
  it('reads the job through findByRequest when the adapter has no jobState; a failing backend gets the note', async () => {
    app = embedded();
    const id = await approvedInstall(app, 'adobe-acrobat-pro');
    const c = await console_(app, 1000);
    expect(outcome(await c.live(), id)).toMatch(/data-testid="job-state" data-state="(queued|installing|installed)"/);

    const deploy = app.backends.deploy;
    expect(deploy.jobState).toBeUndefined();
    deploy.findByRequest = () => Promise.reject(new Error('database is locked'));
    const cell = outcome(await c.live(), id);
    expect(cell).toMatch(/Live job state unavailable: the deployment backend could not be read/);
    expect(cell).not.toMatch(/database is locked/);
  });

  it('leaves requests other than executed installs alone', async () => {
    app = embedded();
    let reads = 0;
    const deploy = app.backends.deploy;
    const find = deploy.findByRequest.bind(deploy);
    deploy.findByRequest = (rid, o) => {
      reads += 1;
      return find(rid, o);
    };
    const c0 = await connect(app);
    const r = await c0.call('software_install', { user: 'jdoe', package: 'adobe-acrobat-pro', reason: 'pdf' });
    await c0.close();
    const id = (r._meta!['itguard/error'] as { request_id: string }).request_id;
    app.sqlite.approvals.decide(id, false, { name: 'console:it-approver' }, 'no');
    const c = await console_(app, 1000);
    expect(outcome(await c.live(), id)).toBe('');
    expect(reads).toBe(0);
  });
});
