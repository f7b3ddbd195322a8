/** The policy's `auth:` block (DESIGN §8): keys, defaults, URL rules, the one-of rule, principals that exist. */
import { describe, expect, it } from 'vitest';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';
import { parsePolicy, PolicyError } from '../../src/policy/load.js';

const withAuth = (block: string) => DEMO_POLICY_YAML.replace('demo: true', `demo: true\nauth:\n${block}`);
const problems = (block: string): string[] => {
  try {
    parsePolicy(withAuth(block));
  } catch (e) {
    if (e instanceof PolicyError) return e.problems;
    throw e;
  }
  return [];
};

const BASE = '  issuers: [https://idp.example.com/oauth2/default]\n  audience: https://itguard.example.com/mcp\n';

describe('policy auth:', () => {
  it('is optional; absent means static bearer tokens only', () => {
    expect(parsePolicy(DEMO_POLICY_YAML).auth).toBeUndefined();
  });

  it('parses the DESIGN §8 example with its defaults, frozen', () => {
    const p = parsePolicy(withAuth(`${BASE}  principal_claim: itguard_principal\n`));
    expect(p.auth).toEqual({
      issuers: ['https://idp.example.com/oauth2/default'],
      audience: 'https://itguard.example.com/mcp',
      principalClaim: 'itguard_principal',
      principalsFromGroups: undefined,
      groupsClaim: 'groups',
      requiredScopes: [],
      staticTokens: true,
    });
    expect(Object.isFrozen(p.auth)).toBe(true);
  });

  it('keeps principals_from_groups in the order written (the first group the token carries wins)', () => {
    const p = parsePolicy(
      withAuth(
        `${BASE}  principals_from_groups: { it-approvers: it-approver, it-agents: helpdesk-agent, "IT Readers": kb-reader }\n  groups_claim: roles\n  required_scopes: [itguard, "api://itguard/mcp"]\n  static_tokens: false\n`,
      ),
    );
    expect(p.auth?.principalsFromGroups).toEqual([
      { group: 'it-approvers', principal: 'it-approver' },
      { group: 'it-agents', principal: 'helpdesk-agent' },
      { group: 'IT Readers', principal: 'kb-reader' },
    ]);
    expect(p.auth).toMatchObject({
      groupsClaim: 'roles',
      requiredScopes: ['itguard', 'api://itguard/mcp'],
      staticTokens: false,
    });
  });

  it('accepts http:// issuers and audiences on loopback hosts only', () => {
    expect(
      problems(
        '  issuers: [http://127.0.0.1:9000, http://localhost:9001/x]\n  audience: http://[::1]:3333/mcp\n  principal_claim: p\n',
      ),
    ).toEqual([]);
    expect(
      problems(
        '  issuers: [http://idp.example.com]\n  audience: http://itguard.example.com/mcp\n  principal_claim: p\n',
      ),
    ).toEqual([
      'auth.issuers[0]: must be https:// (http:// only for loopback hosts)',
      'auth.audience: must be https:// (http:// only for loopback hosts)',
    ]);
  });

  it('names the path of every bad value', () => {
    expect(
      problems(
        '  issuers: ["https://a.example/?q=1", "https://a.example/#f", "https://u:p@a.example", https://a.example, https://a.example, "ftp://a.example"]\n  audience: nope\n  principal_claim: p\n  required_scopes: ["a b"]\n  static_tokens: "no"\n',
      ),
    ).toEqual([
      'auth.issuers[0]: must not have a query',
      'auth.issuers[1]: must not have a fragment',
      'auth.issuers[2]: must not carry a user name or password',
      'auth.issuers[5]: must be https:// (http:// only for loopback hosts)',
      'auth.audience: expected an absolute URL like https://idp.example.com',
      'auth.required_scopes[0]: expected a scope like itguard or api://itguard/mcp (no spaces or quotes)',
      'auth.static_tokens: expected boolean, received string',
    ]);
    expect(problems(`${BASE}  principal_claim: p\n  issuers: [https://a.example, https://a.example]\n`).join()).toMatch(
      /YAML/,
    );
    expect(
      problems(
        '  issuers: [https://a.example, https://a.example]\n  audience: https://x.example/mcp\n  principal_claim: p\n',
      ),
    ).toEqual(['auth.issuers[1]: duplicate issuer https://a.example']);
    expect(problems('  issuers: []\n  audience: https://x.example/mcp\n  principal_claim: p\n')).toEqual([
      'auth.issuers: must have at least 1 items',
    ]);
  });

  it('refuses unknown keys', () => {
    expect(problems(`${BASE}  principal_claim: p\n  jwks_uri: https://idp.example.com/keys\n`)).toEqual([
      'auth.jwks_uri: unknown key',
    ]);
  });

  it('wants exactly one of principal_claim and principals_from_groups, mapping to principals that exist', () => {
    expect(problems(BASE)).toEqual([
      'auth.principal_claim: give exactly one of principal_claim and principals_from_groups',
    ]);
    expect(problems(`${BASE}  principal_claim: p\n  principals_from_groups: { a: kb-reader }\n`)).toEqual([
      'auth.principal_claim: give exactly one of principal_claim and principals_from_groups',
    ]);
    expect(problems(`${BASE}  principals_from_groups: {}\n`)).toEqual([
      'auth.principals_from_groups: must map at least one group',
    ]);
    expect(problems(`${BASE}  principals_from_groups: { it-agents: ghost, admins: Root }\n`)).toEqual([
      'auth.principals_from_groups.admins: expected a lowercase name of [a-z0-9._-]',
      'auth.principals_from_groups.it-agents: must name a principal under principals',
      'auth.principals_from_groups.admins: must name a principal under principals',
    ]);
  });

  it('refuses group keys whose order JavaScript would not keep, and names every object already has', () => {
    expect(problems(`${BASE}  principals_from_groups: { it-agents: helpdesk-agent, "1000": kb-reader }\n`)).toEqual([
      'auth.principals_from_groups.1000: a group named by a plain number cannot keep its place in the match order; map the group by its name',
    ]);
    expect(problems(`${BASE}  principals_from_groups: { constructor: kb-reader }\n`)[0]).toMatch(
      /^auth\.principals_from_groups\.constructor: "constructor" is a name every JavaScript object already has/,
    );
  });
});
