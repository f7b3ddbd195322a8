/** The policy keys of the cloud adapters (DESIGN §8): parsed to camelCase, and every mistake named by its path. */
import { describe, expect, it } from 'vitest';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';
import { parsePolicy, PolicyError } from '../../src/policy/load.js';

const G = '00000000-0000-0000-0000-00000000000a';
const withBackends = (b: string) =>
  DEMO_POLICY_YAML.replace(/backends:[\s\S]*?demo: true/, `backends:\n${b}\ndemo: true`);
const problems = (yaml: string): string[] => {
  try {
    parsePolicy(yaml);
  } catch (e) {
    if (e instanceof PolicyError) return e.problems;
    throw e;
  }
  return [];
};

describe('cloud backend keys', () => {
  it('parses okta, intune and confluence with their defaults; factors okta inherits the Okta directory', () => {
    const p = parsePolicy(
      withBackends(`  directory: { kind: okta, org_url: https://example.okta.com, token_env: OKTA_API_TOKEN }
  factors: { kind: okta }
  deploy: { kind: intune, tenant_id: ${G}, client_id: ${G}, client_secret_env: INTUNE_SECRET, apps: { slack: { app_id: ${G}, group_id: ${G} } } }
  kb: { kind: confluence, base_url: https://example.atlassian.net/wiki, email_env: CONF_EMAIL, token_env: CONF_TOKEN, spaces: [IT, HELP] }`),
    );
    expect(p.backends.directory).toEqual({
      kind: 'okta',
      orgUrl: 'https://example.okta.com',
      tokenEnv: 'OKTA_API_TOKEN',
      timeoutMs: undefined,
    });
    expect(p.backends.factors).toEqual({
      kind: 'okta',
      orgUrl: 'https://example.okta.com',
      tokenEnv: 'OKTA_API_TOKEN',
      timeoutMs: undefined,
    });
    expect(p.backends.deploy).toMatchObject({
      kind: 'intune',
      assign: 'device',
      graphUrl: 'https://graph.microsoft.com',
      loginUrl: 'https://login.microsoftonline.com',
      installTimeoutMs: 72 * 3600_000,
      apps: { slack: { appId: G, groupId: G } },
    });
    expect(p.backends.kb).toMatchObject({ kind: 'confluence', spaces: ['IT', 'HELP'] });
    expect(parsePolicy(DEMO_POLICY_YAML).backends).toMatchObject({
      factors: { kind: 'embedded' },
      kb: { kind: 'embedded' },
      deploy: { kind: 'embedded' },
    });
  });

  it('names each mistake by its path', () => {
    expect(problems(withBackends('  factors: { kind: okta }'))).toEqual([
      expect.stringContaining('backends.factors.org_url: required unless backends.directory is okta'),
    ]);
    expect(
      problems(withBackends('  directory: { kind: okta, org_url: http://okta.example.com, token_env: T }')).join('\n'),
    ).toMatch(
      /backends\.directory\.org_url: expected https:\/\/example\.okta\.com \(http:\/\/ only for loopback hosts/,
    );
    expect(
      problems(
        withBackends(`  deploy: { kind: intune, tenant_id: nope, client_id: ${G}, client_secret_env: S, apps: {} }`),
      ).join('\n'),
    ).toMatch(/backends\.deploy\.tenant_id: expected a GUID[\s\S]*backends\.deploy\.apps: map at least one catalog id/);
    expect(
      problems(
        withBackends(
          "  kb: { kind: confluence, base_url: https://x.atlassian.net/wiki, email_env: E, token_env: T, spaces: ['IT\") OR (x'] }",
        ),
      ).join('\n'),
    ).toMatch(/backends\.kb\.spaces\[0\]: expected a space key/);
    expect(problems(withBackends('  deploy: { kind: intune, client_secret: hunter2 }')).join('\n')).toMatch(
      /client_secret/,
    );
  });
});
