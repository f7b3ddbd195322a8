/** `policy check --probe` for notify: Slack's auth.test against the stand-in, secrets named but unset; nothing posted. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { probeNotify } from '../../src/notify/probe.js';
import type { NotifyPolicy } from '../../src/policy/notify.js';
import { SlackStandin } from '../helpers/slack-standin.js';

let slack: SlackStandin;
beforeAll(async () => {
  slack = await new SlackStandin('xoxb-probe', ['C0APPROVALS']).start();
});
afterAll(() => slack.close());

const policy = (): NotifyPolicy => ({
  approvers: [],
  mail: { enabled: true },
  slack: { botTokenEnv: 'BOT', signingSecretEnv: 'SIGN', channel: 'C0APPROVALS', apiUrl: slack.apiUrl },
  webhooks: [{ url: 'https://hooks.example.com/x', secretEnv: 'HOOK' }],
  remindBeforeExpiryMs: 0,
});

it('passes with a valid token and every secret set, and posts nothing', async () => {
  const r = await probeNotify(policy(), { BOT: 'xoxb-probe', SIGN: 's', HOOK: 'whsec_x' }, AbortSignal.timeout(5000));
  expect(r.ok).toBe(true);
  expect(r.checks.find((c) => c.name === 'slack auth.test')).toMatchObject({ ok: true });
  expect(slack.calls).toHaveLength(0);
});

it('fails naming a bad token and an unset secret', async () => {
  const r = await probeNotify(policy(), { BOT: 'xoxb-wrong', SIGN: 's' }, AbortSignal.timeout(5000));
  expect(r.ok).toBe(false);
  expect(r.checks.find((c) => c.name === 'slack auth.test')).toMatchObject({
    ok: false,
    detail: 'slack auth.test: invalid_auth',
  });
  expect(r.checks.find((c) => c.name.includes('HOOK'))).toMatchObject({
    ok: false,
    detail: 'environment variable not set',
  });
});
