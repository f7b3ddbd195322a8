/**
 * POST /slack/actions: the Interactivity Request URL of itguard's Slack app (ITGUARD_PUBLIC_URL + /slack/actions).
 * An Approve or Deny click on a request's message arrives here as a `block_actions` payload.
 *
 * In order, each failing closed: the raw body's v0 signature is checked against the signing secret, within five
 * minutes of the request's timestamp, before anything is parsed (401, nothing decided, logged; an unsigned request is
 * not audited, so strangers cannot grow the audit chain); the clicking Slack user is mapped to an approver principal
 * through `notify.approvers.<principal>.slack_user` (an unmapped user decides nothing); then the decision goes
 * through the one `decide` every console and CLI decision takes (separation of duties, tier, expiry), and the
 * approval record's state makes it single-use: a replayed or second click finds it decided. Every refusal of a
 * signed click is audited like a decision. Slack is answered 200 at once (it waits three seconds at most); the
 * message is updated with the outcome by the notifier, and the clicking user hears why a click was refused through
 * the callback's `response_url` (only a Slack hooks URL, or the configured api_url's origin, is ever called).
 */
import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { App } from '../app.js';
import { decideFromSlack, type SlackDecision } from '../notify/slack-decide.js';
import { APPROVE_ACTION, DENY_ACTION, verifySlackSignature } from '../notify/slack.js';

const payloadSchema = z.object({
  type: z.string(),
  user: z.object({ id: z.string().max(64) }).optional(),
  team: z.object({ id: z.string().max(64) }).nullish(),
  response_url: z.string().max(2048).optional(),
  actions: z
    .array(
      z.object({
        action_id: z.string().max(255),
        value: z.string().max(2000).optional(),
        action_ts: z.string().max(64).optional(),
      }),
    )
    .max(10)
    .optional(),
});

export function slackActionsRouter(app: App): express.Router {
  const router = express.Router();
  const notifier = app.notifier;
  const raw = express.raw({ type: () => true, limit: '256kb' });

  router.post('/actions', raw, async (req: Request, res: Response) => {
    const secret = notifier?.slackSigningSecret;
    // Security: without a configured signing secret nothing can be verified, so nothing is accepted.
    if (!secret) return void res.status(404).type('text').send('Slack is not configured\n');
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const verdict = verifySlackSignature(
      secret,
      req.get('x-slack-request-timestamp'),
      req.get('x-slack-signature'),
      body,
      Math.floor(app.now() / 1000),
    );
    if (verdict !== 'ok') {
      app.log.warn({ verdict, ip: req.socket.remoteAddress }, 'slack callback refused: signature');
      return void res.status(401).type('text').send(`refused: ${verdict}\n`);
    }
    let payload: z.infer<typeof payloadSchema>;
    try {
      const json = new URLSearchParams(body.toString('utf8')).get('payload');
      payload = payloadSchema.parse(JSON.parse(json ?? 'null'));
    } catch {
      return void res.status(400).type('text').send('refused: the payload is not a Slack interaction\n');
    }
    const action = payload.actions?.find((a) => a.action_id === APPROVE_ACTION || a.action_id === DENY_ACTION);
    // Other interactions (the console link button, shortcuts) are acknowledged and do nothing.
    if (payload.type !== 'block_actions' || !action || !payload.user) return void res.status(200).end();
    const decision: SlackDecision = {
      requestId: action.value ?? '',
      approve: action.action_id === APPROVE_ACTION,
      slackUser: payload.user.id,
      actionTs: action.action_ts,
    };
    // The decision is one unit of work (a group commit); Slack is answered right after, well inside its three seconds.
    let outcome: Awaited<ReturnType<typeof decideFromSlack>>;
    try {
      outcome = await decideFromSlack(app, decision);
    } catch (e) {
      // Fail closed: nothing was decided (the store refused, e.g. busy past its timeout); the user is told to retry.
      app.log.error({ err: e, request_id: decision.requestId }, 'slack decision could not be recorded');
      outcome = {
        ok: false,
        reason: 'unavailable',
        message: `${decision.requestId}: nothing was decided (the store is unavailable); click again in a moment`,
      };
    }
    res.status(200).end();
    notifier?.kick();
    if (!outcome.ok && payload.response_url) void tellUser(app, payload.response_url, outcome.message);
  });
  return router;
}

/** An ephemeral reply to the clicking user, through Slack's response_url; best effort. */
async function tellUser(app: App, url: string, text: string): Promise<void> {
  const api = app.policy.notify?.slack?.apiUrl;
  let ok = false;
  try {
    const u = new URL(url);
    // Security: only Slack's own hooks host (or the configured API's origin, a test stand-in) is ever called.
    ok = (u.protocol === 'https:' && u.hostname === 'hooks.slack.com') || (!!api && u.origin === new URL(api).origin);
  } catch {
    ok = false;
  }
  if (!ok) return;
  try {
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ response_type: 'ephemeral', replace_original: false, text }),
      signal: AbortSignal.timeout(5000),
      redirect: 'error',
    });
  } catch (e) {
    app.log.warn({ err: (e as Error).message }, 'could not tell the Slack user why their click was refused');
  }
}
