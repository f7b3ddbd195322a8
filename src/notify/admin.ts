/**
 * Notifications as operators see them: the CLI (`itguard notify list|retry|test`) and the admin API
 * (`/admin/v1/notifications`, built by another module) call these, so both show the same document: snake_case keys,
 * ISO 8601 times (DESIGN §7). A view never holds a secret: payloads are not shown, webhooks are named by a hash of
 * their URL.
 */
import type { AuditPort, NotifyJob, NotifyPort, NotifyStatus } from '../store/ports/index.js';
import { andThen, UnitOfWork } from '../store/unit.js';

export interface NotificationView {
  id: string;
  request_id: string;
  kind: NotifyJob['kind'];
  channel: NotifyJob['channel'];
  recipient: string;
  status: NotifyStatus;
  attempts: number;
  /** When the next attempt is due (pending only). */
  next_try_at: string | null;
  last_error: string | null;
  /** What the channel answered: a Slack channel:ts, a Message-ID, an HTTP status. */
  ref: string | null;
  created_at: string;
  sent_at: string | null;
  updated_at: string;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function notificationView(j: NotifyJob): NotificationView {
  return {
    id: j.id,
    request_id: j.request_id,
    kind: j.kind,
    channel: j.channel,
    recipient: j.recipient,
    status: j.status,
    attempts: j.attempts,
    next_try_at: j.status === 'pending' ? iso(j.next_try_at) : null,
    last_error: j.last_error,
    ref: j.ref,
    created_at: iso(j.created_at)!,
    sent_at: iso(j.sent_at),
    updated_at: iso(j.updated_at)!,
  };
}

export async function listNotifications(
  store: NotifyPort,
  f: { status?: NotifyStatus | undefined; requestId?: string | undefined; limit?: number | undefined } = {},
): Promise<NotificationView[]> {
  return (await store.list(f)).map(notificationView);
}

export type RetryResult =
  { ok: true; notification: NotificationView } | { ok: false; code: 'NOT_FOUND' | 'NOT_FAILED'; message: string };

/**
 * A failed or cancelled notification is due again now, with a fresh set of attempts; `kick` starts a pass. With an
 * `actor` (the admin API), the retry and its `notify.retried` record are one unit of work.
 */
export async function retryNotification(
  deps: { store: { notify: NotifyPort }; audit: AuditPort },
  id: string,
  actor?: string,
  kick?: () => void,
): Promise<RetryResult> {
  const u = new UnitOfWork('single');
  u.strict = true;
  let ok = false;
  const p = u.add((tx) => andThen(deps.store.notify.retry(tx, id), (v) => ((ok = v.ok), v)));
  if (actor !== undefined)
    void deps.audit.append(u, () => (ok ? [{ event: 'notify.retried', actor, detail: { notification_id: id } }] : []));
  await deps.audit.commit(u);
  const r = await p;
  if (!r.ok)
    return r.reason === 'not_found'
      ? { ok: false, code: 'NOT_FOUND', message: `no notification ${id}` }
      : {
          ok: false,
          code: 'NOT_FAILED',
          message: `notification ${id} is not failed or cancelled; only those are retried`,
        };
  kick?.();
  return { ok: true, notification: notificationView(r.job) };
}
