/**
 * The cloud adapters as a new user would meet them: the built `itguard serve --stdio` with a policy naming Okta
 * (directory and push factors), Intune and Confluence against the loopback stand-ins, driven by v2 SDK clients in
 * both protocol eras. A reset waits for the user's phone (the client declines every elicitation, and is never
 * asked: nothing is typed anywhere), then Okta mails the link; kb_search reads Confluence confined to its space;
 * an approved install reaches Intune once and reports pending.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfluenceStandin } from '../helpers/confluence-standin.js';
import { GraphStandin } from '../helpers/graph-standin.js';
import { tempDir } from '../helpers/harness.js';
import { demoPolicy } from '../helpers/policy-builder.js';
import { OktaStandin } from '../helpers/okta-standin.js';
import { runCliAsync } from '../helpers/peers.js';
import { v2Stdio } from '../helpers/v2-clients.js';

const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const APP = 'a0000000-0000-0000-0000-00000000ac01';
const GROUP = 'b0000000-0000-0000-0000-00000000ac01';
const LAPTOP = 'd1000000-0000-0000-0000-000000000001';
const ENV = {
  OKTA_API_TOKEN: '00okta-e2e-token-secret',
  INTUNE_CLIENT_SECRET: 'intune~e2e~secret~value',
  CONFLUENCE_EMAIL: 'itguard@example.com',
  CONFLUENCE_API_TOKEN: 'ATATT-e2e-confluence-token',
};

let okta: OktaStandin;
let graph: GraphStandin;
let wiki: ConfluenceStandin;
let dir: string;
let policy: string;
let cleanup: () => void;

beforeAll(async () => {
  okta = await OktaStandin.start(ENV.OKTA_API_TOKEN, [
    {
      id: '00u1',
      login: 'jdoe@northwind.example',
      email: 'jdoe@northwind.example',
      firstName: 'Jane',
      lastName: 'Doe',
      groups: ['staff'],
      after: 0,
    },
    {
      id: '00u2',
      login: 'wzhang@northwind.example',
      email: 'wzhang@northwind.example',
      firstName: 'Wei',
      lastName: 'Zhang',
      groups: ['staff'],
      after: 0,
    },
  ]);
  graph = await GraphStandin.start(TENANT, CLIENT, ENV.INTUNE_CLIENT_SECRET);
  graph.users.set('jdoe@northwind.example', 'u-jdoe');
  graph.devices.push({
    id: LAPTOP,
    deviceName: 'NW-LT-1001',
    operatingSystem: 'Windows',
    model: 'Latitude',
    userPrincipalName: 'jdoe@northwind.example',
    azureADDeviceId: 'aad-1',
    objectId: 'obj-1',
  });
  graph.apps.set(APP, {
    displayName: 'Adobe Acrobat Pro',
    group: GROUP,
    script: { pendingReads: 1, outcome: 'Installed' },
  });
  graph.groups.set(GROUP, { displayName: 'Intune - Acrobat required', members: new Set() });
  wiki = await ConfluenceStandin.start(
    ENV.CONFLUENCE_EMAIL,
    ENV.CONFLUENCE_API_TOKEN,
    { IT: { name: 'IT Help', visible: true }, HR: { name: 'HR', visible: true } },
    [
      {
        id: '1001',
        space: 'IT',
        title: 'Account locked out after wrong passwords',
        body: '<p>Wait 15 minutes or ask IT to unlock.</p>',
      },
      { id: '2001', space: 'HR', title: 'Locked salary review', body: '<p>Confidential.</p>' },
    ],
  );
  const t = tempDir();
  cleanup = t.cleanup;
  dir = t.dir;
  policy = join(dir, 'itguard.yaml');
  writeFileSync(
    policy,
    demoPolicy()
      .approvals({ wait_seconds: 8 })
      .backend('directory', { kind: 'okta', org_url: okta.url, token_env: 'OKTA_API_TOKEN' })
      .backend('factors', { kind: 'okta' })
      .backend('deploy', {
        kind: 'intune',
        tenant_id: TENANT,
        client_id: CLIENT,
        client_secret_env: 'INTUNE_CLIENT_SECRET',
        graph_url: graph.url,
        login_url: graph.url,
        apps: { 'adobe-acrobat-pro': { app_id: APP, group_id: GROUP } },
      })
      .backend('kb', {
        kind: 'confluence',
        base_url: `${wiki.url}/wiki`,
        email_env: 'CONFLUENCE_EMAIL',
        token_env: 'CONFLUENCE_API_TOKEN',
        spaces: ['IT'],
      })
      .yaml(),
  );
});
afterAll(async () => {
  await Promise.all([okta?.close(), graph?.close(), wiki?.close()]);
  cleanup?.();
});

const text = (r: { content: unknown }) =>
  (r.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('\n');

describe('serve --stdio with Okta, Intune and Confluence', () => {
  it.each([
    ['legacy', 'jdoe'],
    ['modern', 'wzhang'],
  ] as const)(
    '%s era: a reset waits for the Okta Verify push, then Okta mails the link',
    async (era, user) => {
      const p = await v2Stdio(
        era,
        join(dir, `${era}.db`),
        policy,
        { modes: ['form', 'url'], respond: () => ({ action: 'decline' }) },
        ENV,
      );
      try {
        const r = await p.call('password_reset', { user, reason: 'locked out after too many wrong passwords' });
        expect(r.isError, text(r)).toBeFalsy();
        expect(text(r)).toMatch(new RegExp(`${user[0]}\\*\\*\\*@northwind\\.example`));
        expect(p.asked).toEqual([]); // the phone answered; the client was never asked
        expect(okta.pushes.filter((x) => x.user.startsWith(user))).toHaveLength(1);
        const mail = okta.mails.find((m) => m.to.startsWith(user))!;
        expect(mail).toBeDefined();
        expect(JSON.stringify(r)).not.toContain(mail.link);
      } finally {
        await p.close();
      }
    },
    30_000,
  );

  it('kb_search reads Confluence confined to its space; an approved install reaches Intune once and reports pending', async () => {
    const db = join(dir, 'install.db');
    const p = await v2Stdio('modern', db, policy, {}, ENV);
    try {
      const kb = await p.call('kb_search', { query: 'locked' });
      expect(text(kb)).toContain('CONF-1001');
      expect(text(kb)).not.toContain('CONF-2001');
      expect(wiki.cqls.every((c) => c.startsWith('space in ("IT")'))).toBe(true);

      const args = {
        user: 'jdoe',
        package: 'adobe-acrobat-pro',
        reason: 'signs vendor contracts',
        idempotency_key: 'e2e-install-0001',
      };
      const pending = p.call('software_install', args);
      // Approve from the CLI while the call waits (as an IT approver would).
      let id: string | undefined;
      for (let i = 0; i < 40 && !id; i++) {
        const list = await runCliAsync(['approvals', 'list', '--json', '--db', db, '--policy', policy], ENV);
        id = (JSON.parse(list.stdout || '[]') as { id: string }[])[0]?.id;
      }
      expect(id).toBeDefined();
      expect(graph.memberAdds).toHaveLength(0);
      expect((await runCliAsync(['approvals', 'approve', id!, '--db', db, '--policy', policy], ENV)).code).toBe(0);
      const r = await pending;
      expect(text(r)).toMatch(/requested and is pending — not installed yet/);
      expect(graph.memberAdds).toHaveLength(1);
      const s = await p.call('request_status', { request_id: id! });
      expect(text(s)).toMatch(/install job JOB-\w+: pending/);
      const again = await p.call('software_install', args);
      // Within the 30 s between two reads of the install report the replay stands as it was (the in-process test
      // test/backends/intune.test.ts shows the replay moving on to "installed").
      expect(text(again)).toMatch(/Replay[\s\S]*pending — not installed yet/);
      expect(graph.memberAdds).toHaveLength(1);
      expect(JSON.stringify([kb, r, s, again])).not.toMatch(/eyJ0eXAi|ATATT|00okta|intune~/);
    } finally {
      await p.close();
    }
  }, 60_000);
});
