/**
 * The notifier: enqueues a request's notices in the transaction that creates it (`requested`, called by the human
 * gates), and a worker that sends due jobs, retries failures with backoff, reminds approvers before a request
 * expires and updates the messages once it is decided. Sending is never on the tool call's path: a channel that is
 * down delays its notice, never the call, and a job claimed by one process (a lease in the store) is sent by it alone.
 *
 * Secrets (the Slack bot token, webhook secrets) are read from the environment variables the policy names when the
 * notifier is built: a missing one stops the process at start with the policy key that names it.
 */
import type { Logger } from 'pino';
import { ConfigError } from '../config.js';
import type { NotifyPolicy } from '../policy/notify.js';
import type { ApprovalRow, ApprovalsConsole, NewJob, NotifyJob, NotifyPort } from '../store/ports/index.js';
import { single, type Op, type Tx, type UnitRunner } from '../store/unit.js';
import type { OutboxPort } from '../core/ports/outbox.js';
import { BackendError } from '../core/backend.js';
import {
  outcomeJobs,
  requestJobs,
  webhookRecipient,
  type MailPayload,
  type SlackPayload,
  type WebhookPayload,
} from './jobs.js';
import { SendError } from './send-error.js';
import { slackCall } from './slack.js';
import { sendWebhook } from './webhook.js';

export const MAX_ATTEMPTS = 10;
const LEASE_MS = 60_000;
/** 15 s, 30 s, 1 min, … doubling, at most an hour between attempts: ten attempts span about two and a half hours. */
export const backoffMs = (attempt: number): number => Math.min(15_000 * 2 ** (attempt - 1), 3600_000);

export interface NotifierDeps {
  policy: NotifyPolicy;
  store: NotifyPort;
  approvals: Pick<ApprovalsConsole, 'list' | 'get'>;
  /** Commits the notifier's writes (each its own unit). */
  runner: UnitRunner;
  outbox: () => OutboxPort;
  log: Logger;
  now: () => number;
  /** Where the console is (ITGUARD_PUBLIC_URL or the listener); read when a message is rendered. */
  links: { base: string };
  env?: NodeJS.ProcessEnv;
}

function secret(env: NodeJS.ProcessEnv, name: string, key: string): string {
  const v = env[name];
  if (!v) throw new ConfigError(`${key}: environment variable ${name} is not set`);
  return v;
}

export class Notifier {
  readonly slackSigningSecret: string | undefined;
  private readonly slackToken: string | undefined;
  private readonly webhookSecrets = new Map<string, { url: string; secret: string }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private kicked: NodeJS.Immediate | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly d: NotifierDeps) {
    const env = d.env ?? process.env;
    const s = d.policy.slack;
    if (s) {
      this.slackToken = secret(env, s.botTokenEnv, 'notify.slack.bot_token_env');
      this.slackSigningSecret = secret(env, s.signingSecretEnv, 'notify.slack.signing_secret_env');
    }
    d.policy.webhooks.forEach((w, i) =>
      this.webhookSecrets.set(webhookRecipient(w.url), {
        url: w.url,
        secret: secret(env, w.secretEnv, `notify.webhooks[${i}].secret_env`),
      }),
    );
  }

  get policy(): NotifyPolicy {
    return this.d.policy;
  }

  /** NoticesPort: the notices of a request just created, enqueued in the unit that creates it. */
  requested(tx: Tx, row: ApprovalRow): void | Promise<void> {
    const n = this.d.store.enqueue(tx, requestJobs(this.d.policy, row, this.d.links.base, false));
    if (n instanceof Promise) return n.then(() => undefined);
  }

  private write<T>(op: Op<T>): Promise<T> {
    return single(this.d.runner, op, true);
  }

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.pass(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.kicked) clearImmediate(this.kicked);
    this.stopping.abort();
  }

  /** A pass soon, without waiting for the timer (a new request, a decision from Slack). */
  kick(): void {
    if (this.stopping.signal.aborted) return;
    this.kicked ??= setImmediate(() => {
      this.kicked = undefined;
      void this.pass();
    });
  }

  /** One pass now (after the one in progress): reminders, outcomes, then every due job. Never throws. */
  async pass(): Promise<void> {
    while (this.running) await this.running;
    const p = this.run().finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  private async run(): Promise<void> {
    if (this.stopping.signal.aborted) return; // a stopped notifier (the app closed) sends nothing more
    try {
      await this.remind();
      await this.closeDecided();
      const due = await this.write((tx) => this.d.store.claimDue(tx, LEASE_MS));
      await Promise.all(due.map((j) => this.send(j)));
      // Outcome updates made by this pass (a Slack post that just got its ts) go out at once.
      if (due.length) await this.closeDecided();
    } catch (e) {
      this.d.log.error({ err: e }, 'notifier pass failed');
    }
  }

  /**
   * `itguard notify test`: one test message on each configured channel (each approver's mail, the Slack channel,
   * each webhook), sent now, one attempt each; returns the jobs as they ended.
   */
  async test(from: string): Promise<NotifyJob[]> {
    const id = `TEST-${Date.now().toString(36).toUpperCase()}`;
    const text = `itguard test notification (${id}) from ${from}: this channel reaches the approvers. No action is needed.`;
    const p = this.d.policy;
    const jobs: NewJob[] = [];
    if (p.mail.enabled)
      for (const a of p.approvers)
        if (a.email)
          jobs.push({
            requestId: id,
            kind: 'test',
            channel: 'mail',
            recipient: a.principal,
            payload: { username: a.principal, to: a.email, subject: `itguard test notification (${id})`, text },
          });
    if (p.slack)
      jobs.push({
        requestId: id,
        kind: 'test',
        channel: 'slack',
        recipient: p.slack.channel,
        payload: { channel: p.slack.channel, text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] },
      });
    for (const w of p.webhooks)
      jobs.push({
        requestId: id,
        kind: 'test',
        channel: 'webhook',
        recipient: webhookRecipient(w.url),
        payload: {
          body: { type: 'itguard.test', timestamp: new Date(this.d.now()).toISOString(), data: { id, text } },
        },
      });
    await this.write((tx) => this.d.store.enqueue(tx, jobs));
    const due = await this.write((tx) => this.d.store.claimDue(tx, LEASE_MS, 100, id));
    await Promise.all(due.map((j) => this.send(j)));
    return this.d.store.jobsFor(id);
  }

  /** Pending requests within `remind_before_expiry` of expiry get one reminder (the store's unique key). */
  private async remind(): Promise<void> {
    const before = this.d.policy.remindBeforeExpiryMs;
    if (!before) return;
    const now = this.d.now();
    for (const row of await this.d.approvals.list(['pending'], 500)) {
      const at = row.expires_at - before;
      // A request whose whole life is shorter than the reminder lead is not reminded at once on creation.
      if (now < at || at <= row.created_at || !(await this.d.store.jobsFor(row.id)).length) continue;
      const jobs = requestJobs(this.d.policy, row, this.d.links.base, true);
      await this.write((tx) => this.d.store.enqueue(tx, jobs));
    }
  }

  private async closeDecided(): Promise<void> {
    for (const id of await this.d.store.openRequests()) {
      const row = await this.d.approvals.get(id);
      if (row?.status === 'pending') continue;
      const jobs = await this.d.store.jobsFor(id);
      // A post in flight gets its ts soon: the outcome waits for it, so its message is updated too.
      if (jobs.some((j) => j.status === 'sending')) continue;
      const outcomes = row ? outcomeJobs(this.d.policy, row, jobs, this.d.links.base) : [];
      await this.write((tx) => this.d.store.close(tx, id, outcomes));
    }
  }

  private async send(job: NotifyJob): Promise<void> {
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(30_000)]);
    try {
      const ref = await this.deliver(job, signal);
      await this.write((tx) => this.d.store.sent(tx, job.id, ref));
      this.d.log.info(
        { notification: job.id, request_id: job.request_id, channel: job.channel, kind: job.kind },
        'notification sent',
      );
    } catch (e) {
      const err =
        e instanceof SendError
          ? e
          : e instanceof BackendError
            ? new SendError(`mail: ${e.message}`, e.retryable)
            : new SendError(`${job.channel}: ${e instanceof Error ? e.message : String(e)}`, true);
      // A test is one attempt, reported at once (`itguard notify test`); real notices are retried with backoff.
      const next =
        err.retryable && job.kind !== 'test' && job.attempts < MAX_ATTEMPTS
          ? this.d.now() + Math.max(backoffMs(job.attempts), err.retryAfterMs ?? 0)
          : undefined;
      await this.write((tx) => this.d.store.attemptFailed(tx, job.id, err.message, next));
      this.d.log.warn(
        {
          notification: job.id,
          request_id: job.request_id,
          channel: job.channel,
          attempt: job.attempts,
          error: err.message,
          retry: next !== undefined,
        },
        next === undefined ? 'notification failed for good' : 'notification failed; will retry',
      );
    }
  }

  private async deliver(job: NotifyJob, signal: AbortSignal): Promise<string | undefined> {
    const payload = JSON.parse(job.payload) as unknown;
    switch (job.channel) {
      case 'mail': {
        const m = payload as MailPayload;
        const r = await this.d
          .outbox()
          .send(
            { username: m.username, channel: 'email', to: m.to, subject: m.subject, text: m.text },
            { requestId: `notify:${job.id}`, signal },
          );
        return r.messageId;
      }
      case 'slack': {
        const s = this.d.policy.slack;
        if (!s || !this.slackToken) throw new SendError('slack: no longer configured in the policy', false);
        const m = payload as SlackPayload;
        const body = { channel: m.channel, text: m.text, blocks: m.blocks, ...(m.ts ? { ts: m.ts } : {}) };
        const r = await slackCall(s.apiUrl, this.slackToken, m.ts ? 'chat.update' : 'chat.postMessage', body, signal);
        return `${String(r.channel ?? m.channel)}:${String(r.ts ?? m.ts ?? '')}`;
      }
      case 'webhook': {
        const w = this.webhookSecrets.get(job.recipient);
        if (!w) throw new SendError('webhook: no longer configured in the policy', false);
        const body = JSON.stringify((payload as WebhookPayload).body);
        return sendWebhook(w.url, w.secret, job.id, body, this.d.now(), signal);
      }
    }
  }
}
