/**
 * `itguard policy check --probe` for the notification channels, changing nothing: the Slack bot token is checked
 * with `auth.test` (no message is posted), and every secret the `notify:` section names must be set. Webhooks are
 * not called, since any POST would deliver a message: `itguard notify test` sends one on each channel.
 */
import type { ProbeReport } from '../core/backend.js';
import type { NotifyPolicy } from '../policy/notify.js';
import { slackCall } from './slack.js';

export async function probeNotify(p: NotifyPolicy, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<ProbeReport> {
  const checks: ProbeReport['checks'] = [];
  const has = (name: string, key: string) => {
    const ok = !!env[name];
    checks.push({ name: `${key} (${name})`, ok, ...(ok ? {} : { detail: 'environment variable not set' }) });
    return ok ? env[name]! : undefined;
  };
  const s = p.slack;
  if (s) {
    const token = has(s.botTokenEnv, 'notify.slack.bot_token_env');
    has(s.signingSecretEnv, 'notify.slack.signing_secret_env');
    if (token) {
      try {
        const r = await slackCall(s.apiUrl, token, 'auth.test', {}, signal);
        checks.push({
          name: 'slack auth.test',
          ok: true,
          detail: `bot ${String(r.user ?? '?')} in team ${String(r.team ?? '?')}`,
        });
      } catch (e) {
        checks.push({ name: 'slack auth.test', ok: false, detail: (e as Error).message });
      }
    }
  }
  p.webhooks.forEach((w, i) => has(w.secretEnv, `notify.webhooks[${i}].secret_env`));
  if (p.webhooks.length)
    checks.push({
      name: 'webhooks',
      ok: true,
      detail: 'not called (a POST would deliver); itguard notify test sends one',
    });
  return {
    backend: 'notify',
    target: s ? s.apiUrl : `${p.webhooks.length} webhook(s)`,
    ok: checks.every((c) => c.ok),
    checks,
  };
}
