/**
 * `itguard notify list [--status S] | retry ID | test`: approver notifications from the shell (DESIGN §7). `list`
 * shows the delivery jobs (sent, failed, attempts, next try); `retry` makes a failed one due again (a running server
 * sends it); `test` sends a test message on each configured channel now and exits 1 if any failed.
 */
import { hostname } from 'node:os';
import { connectStores } from '../app.js';
import { config, ConfigError } from '../config.js';
import { createLogger } from '../log.js';
import { listNotifications, notificationView, retryNotification, type NotificationView } from '../notify/admin.js';
import { Notifier } from '../notify/notifier.js';
import { NOTIFY_STATUSES, type NotifyStatus } from '../store/ports/index.js';
import { safeText } from '../terminal.js';
import { out, policyOrExit, printJson, UsageError, type Flags, sqliteFileOf } from './common.js';

const line = (n: NotificationView): string =>
  `${n.id}  ${n.status.padEnd(9)} ${n.channel.padEnd(7)} ${n.kind.padEnd(9)} ${safeText(n.request_id)} to ${safeText(n.recipient)}` +
  `  attempts ${n.attempts}${n.next_try_at ? `  next ${n.next_try_at}` : ''}${n.sent_at ? `  sent ${n.sent_at}` : ''}` +
  `${n.last_error ? `\n    last error: ${safeText(n.last_error)}` : ''}`;

function statusFlag(flags: Flags): NotifyStatus | undefined {
  const v = flags.values.status;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(NOTIFY_STATUSES as readonly string[]).includes(v))
    throw new UsageError(`--status must be one of ${NOTIFY_STATUSES.join(', ')}`);
  return v as NotifyStatus;
}

export async function notify(flags: Flags): Promise<number> {
  const [verb = 'list', id] = flags.positionals;
  if (!['list', 'retry', 'test'].includes(verb)) throw new UsageError(`unknown notify command "${verb}"`);
  const status = statusFlag(flags);
  if (verb === 'retry' && !id) throw new UsageError('notify retry needs the notification id (see notify list)');
  const { policy } = policyOrExit(flags);
  const s = await connectStores(sqliteFileOf(flags, policy.store), policy);
  try {
    if (verb === 'list') {
      const rows = await listNotifications(s.store.notify, { status });
      if (flags.json) printJson({ notifications: rows });
      else if (!rows.length)
        out(policy.notify ? 'no notifications' : 'no notifications (the policy has no notify: section)');
      else for (const r of rows) out(line(r));
      return 0;
    }
    if (verb === 'retry') {
      const r = await retryNotification(s, id!);
      if (flags.json) printJson(r.ok ? r : { ok: false, error: { code: r.code, message: r.message } });
      else out(r.ok ? `${r.notification.id} is due again; a running itguard server sends it` : r.message);
      return r.ok ? 0 : 1;
    }
    if (!policy.notify) throw new ConfigError('notify test: the policy has no notify: section');
    const notifier = new Notifier({
      policy: policy.notify,
      store: s.store.notify,
      approvals: s.store.approvals,
      runner: s.audit,
      outbox: () => s.backends.outbox,
      log: createLogger().child({ component: 'notify' }),
      now: Date.now,
      links: { base: config().publicUrl ?? 'http://127.0.0.1:3333' },
    });
    const jobs = (await notifier.test(hostname())).map(notificationView);
    const failed = jobs.filter((j) => j.status !== 'sent');
    if (flags.json) printJson({ ok: failed.length === 0, notifications: jobs });
    else if (!jobs.length) out('no channel is configured under notify: (approvers with email, slack, webhooks)');
    else
      for (const j of jobs)
        out(
          `${j.channel.padEnd(7)} to ${safeText(j.recipient)}: ${j.status === 'sent' ? 'sent' : `FAILED (${safeText(j.last_error ?? '')})`}`,
        );
    return failed.length ? 1 : 0;
  } finally {
    await s.close();
  }
}
