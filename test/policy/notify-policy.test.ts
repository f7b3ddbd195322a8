/** The policy's `notify:` block (DESIGN §8): the DESIGN example, defaults, and errors that name their path and rule. */
import { describe, expect, it } from 'vitest';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';
import { parsePolicy, PolicyError } from '../../src/policy/load.js';

const withNotify = (block: string) => DEMO_POLICY_YAML.replace('demo: true', `demo: true\nnotify:\n${block}`);
const problems = (block: string): string[] => {
  try {
    parsePolicy(withNotify(block));
  } catch (e) {
    if (e instanceof PolicyError) return e.problems;
    throw e;
  }
  return [];
};

describe('policy notify:', () => {
  it('is optional; absent means nobody is told', () => {
    expect(parsePolicy(DEMO_POLICY_YAML).notify).toBeUndefined();
  });

  it('parses the DESIGN §8 example with its defaults, frozen', () => {
    const p = parsePolicy(
      withNotify(`  approvers: { it-approver: { email: it-approvals@example.com, slack_user: U0123ABC } }
  mail: { enabled: true }
  slack: { bot_token_env: SLACK_BOT_TOKEN, signing_secret_env: SLACK_SIGNING_SECRET, channel: C0APPROVALS }
  webhooks: [{ url: "https://prod-01.westeurope.logic.azure.com/workflows/x?sig=abc", secret_env: ITGUARD_WEBHOOK_SECRET }]
  remind_before_expiry: 2h
`),
    );
    expect(p.notify).toEqual({
      approvers: [{ principal: 'it-approver', email: 'it-approvals@example.com', slackUser: 'U0123ABC' }],
      mail: { enabled: true },
      slack: {
        botTokenEnv: 'SLACK_BOT_TOKEN',
        signingSecretEnv: 'SLACK_SIGNING_SECRET',
        channel: 'C0APPROVALS',
        apiUrl: 'https://slack.com/api',
      },
      webhooks: [
        {
          url: 'https://prod-01.westeurope.logic.azure.com/workflows/x?sig=abc',
          secretEnv: 'ITGUARD_WEBHOOK_SECRET',
        },
      ],
      remindBeforeExpiryMs: 2 * 3600_000,
    });
    expect(Object.isFrozen(p.notify!.approvers)).toBe(true);
    expect(parsePolicy(withNotify('  approvers: {}\n')).notify).toMatchObject({
      mail: { enabled: true },
      slack: undefined,
      webhooks: [],
      remindBeforeExpiryMs: 7_200_000,
    });
  });

  it('refuses approvers that are not principals with approvals:decide', () => {
    expect(problems('  approvers: { nobody: { email: a@example.com } }\n')).toEqual([
      expect.stringMatching(/notify\.approvers\.nobody.*must name a principal/),
    ]);
    expect(problems('  approvers: { helpdesk-agent: { email: a@example.com } }\n')).toEqual([
      expect.stringMatching(/notify\.approvers\.helpdesk-agent.*lacks the approvals:decide scope/),
    ]);
  });

  it('names the field and rule of every bad value', () => {
    const p = problems(`  approvers: { it-approver: { email: not-an-address, slack_user: "@jane" } }
  slack: { bot_token_env: slack_token, signing_secret_env: S, channel: "#approvals" }
  webhooks: [{ url: "http://hooks.example.com/x", secret_env: H }, { url: "https://u:p@hooks.example.com/x", secret_env: H }]
  remind_before_expiry: 2 hours
  colour: blue
`).join('\n');
    expect(p).toMatch(/notify\.approvers\.it-approver\.email.*e-mail address/);
    expect(p).toMatch(/notify\.approvers\.it-approver\.slack_user.*Slack user id/);
    expect(p).toMatch(/notify\.slack\.bot_token_env.*environment variable name/);
    expect(p).toMatch(/notify\.slack\.channel.*channel id/);
    expect(p).toMatch(/notify\.webhooks\[0\]\.url.*https:\/\/ \(http:\/\/ only for loopback hosts\)/);
    expect(p).toMatch(/notify\.webhooks\[1\]\.url.*user name or password/);
    expect(p).toMatch(/notify\.remind_before_expiry.*duration/);
    expect(p).toMatch(/notify.*colour/);
  });
});
