/**
 * `itguard policy check --probe` with the cloud adapters (Okta directory and push factors, Intune, Confluence), run
 * as a user would (the built CLI) against the loopback stand-ins: reachability and permissions, exit 0 when all
 * hold and 1 naming the backend when one is missing, no write to any vendor and no secret printed.
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

const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const APP = 'a0000000-0000-0000-0000-00000000ac01';
const GROUP = 'b0000000-0000-0000-0000-00000000ac01';
const SECRETS = {
  OKTA_API_TOKEN: '00okta-probe-token-secret',
  INTUNE_CLIENT_SECRET: 'intune~probe~secret~value',
  CONFLUENCE_EMAIL: 'itguard@example.com',
  CONFLUENCE_API_TOKEN: 'ATATT-probe-confluence-token',
};

let okta: OktaStandin;
let graph: GraphStandin;
let wiki: ConfluenceStandin;
let file: string;
let cleanup: () => void;

beforeAll(async () => {
  okta = await OktaStandin.start(SECRETS.OKTA_API_TOKEN, []);
  graph = await GraphStandin.start(TENANT, CLIENT, SECRETS.INTUNE_CLIENT_SECRET);
  graph.devices.push({
    id: 'd1',
    deviceName: 'x',
    operatingSystem: 'Windows',
    model: 'm',
    userPrincipalName: 'a@b',
    azureADDeviceId: 'a',
    objectId: 'o',
  });
  graph.apps.set(APP, {
    displayName: 'Adobe Acrobat Pro',
    group: GROUP,
    script: { pendingReads: 0, outcome: 'Installed' },
  });
  graph.groups.set(GROUP, { displayName: 'Intune - Acrobat required', members: new Set() });
  wiki = await ConfluenceStandin.start(
    SECRETS.CONFLUENCE_EMAIL,
    SECRETS.CONFLUENCE_API_TOKEN,
    { IT: { name: 'IT Help', visible: true } },
    [],
  );
  const t = tempDir();
  cleanup = t.cleanup;
  file = join(t.dir, 'itguard.yaml');
  writeFileSync(
    file,
    demoPolicy()
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

interface ProbeDoc {
  ok: boolean;
  backends: { backend: string; kind: string; ok: boolean; checks: { name: string; ok: boolean; detail?: string }[] }[];
}

describe('policy check --probe with the cloud adapters', () => {
  it('reports each adapter reachable and permitted, then names the one missing a permission; writes nothing', async () => {
    const good = await runCliAsync(['policy', 'check', file, '--probe', '--json'], SECRETS);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    const doc = JSON.parse(good.stdout) as ProbeDoc;
    for (const [name, kind] of [
      ['directory', 'okta'],
      ['factors', 'okta'],
      ['deploy', 'intune'],
      ['kb', 'confluence'],
    ]) {
      const b = doc.backends.find((x) => x.backend === name)!;
      expect(b, good.stdout).toMatchObject({ kind, ok: true });
      expect(b.checks.length).toBeGreaterThan(0);
    }

    graph.permissions.delete('GroupMember.ReadWrite.All');
    wiki.spaces.IT!.visible = false;
    const bad = await runCliAsync(['policy', 'check', file, '--probe'], SECRETS);
    const text = `${bad.stdout}\n${bad.stderr}`;
    expect(bad.code, text).toBe(1);
    expect(text).toMatch(/FAIL deploy \(intune\)/);
    expect(text).toMatch(/FAIL kb \(confluence\)/);
    expect(text).toMatch(/ok {3}directory \(okta\)/);
    expect(text).toMatch(/probe failed: deploy, kb/);

    for (const out of [good.stdout, good.stderr, text])
      for (const s of Object.values(SECRETS).slice(0, 2)) expect(out).not.toContain(s);
    expect(text).not.toContain(SECRETS.CONFLUENCE_API_TOKEN);
    const writes = [...okta.seen, ...graph.seen, ...wiki.seen].filter(
      (s) => s.method !== 'GET' && !s.path.endsWith('/oauth2/v2.0/token'),
    );
    expect(writes).toEqual([]);
  });

  it('a missing secret is a configuration error naming the policy key (exit 2)', async () => {
    const r = await runCliAsync(['policy', 'check', file, '--probe'], { ...SECRETS, INTUNE_CLIENT_SECRET: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /backends\.deploy\.client_secret_env: environment variable INTUNE_CLIENT_SECRET is not set/,
    );
  });
});
