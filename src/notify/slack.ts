/**
 * Slack, both directions. Out: the Web API (`chat.postMessage`, `chat.update`) with the bot token, the approval
 * message with Approve/Deny buttons and its update once decided. In: the v0 request signature Slack puts on every
 * interactivity callback (`v0=` hex HMAC-SHA256 of `v0:{timestamp}:{raw body}` under the signing secret), accepted
 * within five minutes of the request's timestamp and compared in constant time, before the body is parsed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { OUTCOME_WORDS, slackEscape as esc, type Notice } from './message.js';
import { SendError } from './send-error.js';

export const APPROVE_ACTION = 'itguard_approve';
export const DENY_ACTION = 'itguard_deny';
/** Slack's own verifiers refuse a timestamp further than this from now. */
export const SLACK_WINDOW_S = 5 * 60;

export interface SlackMessage {
  channel: string;
  text: string;
  blocks: unknown[];
}

const time = (iso: string) =>
  `<!date^${Math.floor(Date.parse(iso) / 1000)}^{date_short_pretty} {time}|${iso.replace('.000Z', 'Z')}>`;

function details(n: Notice, mentions: readonly string[]): unknown[] {
  const who = `*${esc(n.agent)}*${n.on_behalf_of ? ` for ${esc(n.on_behalf_of)}` : ''}`;
  return [
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `${esc(n.summary)}\nAsked by the agent ${who}${n.target ? `; target user ${esc(n.target)}` : ''}${mentions.length ? `\n${mentions.map((u) => `<@${u}>`).join(' ')}` : ''}`,
      },
    },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: `*Reason given by the agent*\n>${esc(n.reason).replace(/\n/g, '\n>')}` },
    },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: `*Caps it would spend*\n${n.caps.length ? n.caps.map(esc).join('\n') : 'none'}` },
    },
  ];
}

/** The request's message; buttons only for the approval tier (an mfa request is confirmed by its target user's code). */
export function requestMessage(
  channel: string,
  n: Notice,
  mentions: readonly string[],
  reminder: boolean,
): SlackMessage {
  const head = `${reminder ? 'Reminder: ' : ''}${n.tier === 'mfa' ? 'Waiting for the user to confirm' : 'Approval needed'}`;
  const buttons =
    n.tier === 'approval'
      ? [
          {
            type: 'button',
            action_id: APPROVE_ACTION,
            style: 'primary',
            text: { type: 'plain_text', text: 'Approve' },
            value: n.request_id,
          },
          {
            type: 'button',
            action_id: DENY_ACTION,
            style: 'danger',
            text: { type: 'plain_text', text: 'Deny' },
            value: n.request_id,
          },
        ]
      : [];
  return {
    channel,
    text: `${head}: ${n.summary} (${n.request_id})`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: head } },
      ...details(n, mentions),
      {
        type: 'actions',
        block_id: `itguard:${n.request_id}`,
        elements: [
          ...buttons,
          {
            type: 'button',
            action_id: 'itguard_open',
            text: { type: 'plain_text', text: 'Open the console' },
            url: n.console_url,
          },
        ],
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${n.request_id} · expires ${time(n.expires_at)}` }] },
    ],
  };
}

/** The same message once decided: the outcome instead of the buttons. */
export function outcomeMessage(channel: string, n: Notice, status: string, decidedBy: string | null): SlackMessage {
  const word = OUTCOME_WORDS[status] ?? status;
  const line = `*${word}*${decidedBy ? ` by ${esc(decidedBy)}` : ''}`;
  return {
    channel,
    text: `${word}: ${n.summary} (${n.request_id})`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: word } },
      ...details(n, []),
      { type: 'section', text: { type: 'mrkdwn', text: line } },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `${n.request_id} · <${n.console_url}|open the console>` }],
      },
    ],
  };
}

/** Slack error codes worth another try; any other `ok: false` is permanent (bad token, unknown channel, …). */
const TRANSIENT = new Set(['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

/** One Web API call; resolves to the response's fields, or throws SendError saying whether to try again. */
export async function slackCall(
  apiUrl: string,
  token: string,
  method: 'chat.postMessage' | 'chat.update' | 'auth.test',
  body: Record<string, unknown>,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(`${apiUrl}/${method}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(body),
      signal,
      redirect: 'error',
    });
  } catch (e) {
    throw new SendError(`slack ${method}: ${(e as Error).name === 'TimeoutError' ? 'timed out' : 'unreachable'}`, true);
  }
  const retryAfter = Number(res.headers.get('retry-after'));
  if (res.status === 429)
    throw new SendError(
      `slack ${method}: rate limited`,
      true,
      Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined,
    );
  if (res.status >= 500) throw new SendError(`slack ${method}: HTTP ${res.status}`, true);
  const json = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (!json) throw new SendError(`slack ${method}: HTTP ${res.status} without a JSON body`, res.status >= 500);
  if (json.ok !== true) {
    const error = typeof json.error === 'string' ? json.error.slice(0, 100) : 'unknown_error';
    throw new SendError(`slack ${method}: ${error}`, TRANSIENT.has(error));
  }
  return json;
}

export type SlackVerdict = 'ok' | 'missing' | 'stale' | 'bad_signature';

/** Verifies a callback's v0 signature over its raw body. `nowS`: unix seconds. */
export function verifySlackSignature(
  secret: string,
  timestamp: string | undefined,
  signature: string | undefined,
  raw: Buffer,
  nowS: number,
): SlackVerdict {
  if (!timestamp || !signature) return 'missing';
  if (!/^\d{1,12}$/.test(timestamp)) return 'bad_signature';
  // Security: an old (or future) timestamp is a replay of a captured request, whatever its signature.
  if (Math.abs(nowS - Number(timestamp)) > SLACK_WINDOW_S) return 'stale';
  const mac = createHmac('sha256', secret).update(`v0:${timestamp}:`).update(raw).digest('hex');
  const want = Buffer.from(`v0=${mac}`);
  const got = Buffer.from(signature);
  // Security: constant-time comparison; a length mismatch is a mismatch.
  return got.length === want.length && timingSafeEqual(got, want) ? 'ok' : 'bad_signature';
}
