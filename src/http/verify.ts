/**
 * The MFA verification page: the target user opens the one-time link and enters the code from their
 * authenticator. The link alone grants nothing; it is single use and expires with its request. The code goes
 * from the user's browser to itguard only — never through the MCP client or the model.
 */
import express, { type Response, type Router } from 'express';
import type { App } from '../app.js';
import { raiseAlarm } from '../guard/alarm.js';
import { decide } from '../guard/decide.js';
import { single } from '../store/unit.js';
import type { ApprovalRow } from '../store/ports/index.js';

export const esc = (s: unknown): string =>
  String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

export function pageHeaders(res: Response): void {
  res.set({
    'Content-Security-Policy':
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'same-origin',
  });
}

export const page = (title: string, body: string): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} — itguard</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.4rem}.box{border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem;background:#f6f8fa}
input[name=code]{font-size:1.6rem;letter-spacing:.3rem;width:9rem;padding:.3rem}button{font-size:1rem;padding:.45rem 1rem;margin:.5rem .5rem 0 0}
.err{color:#b42318}.ok{color:#067647}</style></head><body>${body}</body></html>`;

function form(row: ApprovalRow, token: string, message = ''): string {
  return page(
    'Confirm with your authenticator',
    `<h1>Confirm an IT action on your account</h1>
<div class="box"><p><strong>${esc(row.summary)}</strong></p><p>Requested by the IT assistant (${esc(row.principal)}).<br>Reason: ${esc(row.reason)}</p>
<p>This link expires at ${esc(new Date(row.expires_at).toISOString())}.</p></div>
${message}
<form method="post" action="/verify/${esc(token)}">
<p><label>Code from your authenticator app for <strong>${esc(row.target)}</strong><br>
<input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus data-testid="code"></label></p>
<button type="submit" name="decision" value="confirm" data-testid="confirm">Confirm</button>
<button type="submit" name="decision" value="reject" formnovalidate data-testid="reject">This was not me — reject</button>
</form>`,
  );
}

const gone = () =>
  page(
    'Link not valid',
    '<h1>This link is not valid</h1><p>It was already used, has expired, or never existed. Nothing was changed.</p>',
  );

export function verifyRouter(app: App): Router {
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '4kb' }));

  r.get('/:token', async (req, res) => {
    pageHeaders(res);
    const row = await app.store.approvals.byVerifyToken(req.params.token);
    if (!row || row.status !== 'pending' || row.tier !== 'mfa') return void res.status(404).send(gone());
    res.send(form(row, req.params.token));
  });

  r.post('/:token', async (req, res) => {
    pageHeaders(res);
    const token = req.params.token;
    const row = await app.store.approvals.byVerifyToken(token);
    if (!row || row.status !== 'pending' || row.tier !== 'mfa' || !row.target) return void res.status(404).send(gone());
    const target = row.target;
    const body = req.body as { code?: unknown; decision?: unknown };
    // The target user, proven by the link and (to approve) their code: src/guard/decide.ts holds the rules.
    const who = { name: `mfa:${target}`, via: 'verify' as const, directoryUser: target };
    const base = {
      actor: `mfa:${target}`,
      onBehalfOf: row.on_behalf_of ?? undefined,
      traceId: row.trace_id,
      tool: row.tool,
    };
    if (body.decision === 'reject') {
      await decide(app, {
        id: row.id,
        approve: false,
        actor: who,
        note: 'rejected by the target user on the verification page',
      });
      await single(app.audit, (tx) => app.store.approvals.consumeVerifyLink(tx, row.id), true);
      await app.audit.record({ ...base, event: 'mfa.rejected', detail: { request_id: row.id, target } });
      return void res.send(
        page(
          'Rejected',
          `<h1 class="ok">Rejected</h1><p>Nothing was changed. If you did not expect this, contact the IT service desk.</p>`,
        ),
      );
    }
    const code = typeof body.code === 'string' ? body.code.trim() : '';
    const v = await app.backends.factors.verify(target, code, { signal: AbortSignal.timeout(10_000) });
    if (!v.ok) {
      await app.audit.record({
        ...base,
        event: 'mfa.failed',
        detail: { request_id: row.id, target, channel: 'page', why: v.why },
      });
      if (v.justLocked) {
        await raiseAlarm(app, undefined, {
          kind: 'MFA_LOCKED',
          rule: 'mfa-failures',
          message: `${target}'s authenticator locked after 5 wrong codes`,
          detail: { target, request_id: row.id },
        });
      }
      const msg =
        v.why === 'locked' || v.justLocked
          ? `Too many wrong codes: your authenticator is locked until ${new Date(v.lockedUntil ?? 0).toISOString()}.`
          : v.why === 'replayed'
            ? 'That code was already used. Wait for the next code and try again.'
            : `That code is not right (${v.failures ?? 1} of 5 attempts used). Check your authenticator and try again.`;
      return void res.status(400).send(form(row, token, `<p class="err" data-testid="error">${esc(msg)}</p>`));
    }
    const d = await decide(app, {
      id: row.id,
      approve: true,
      actor: who,
      note: 'confirmed by the target user with their authenticator',
    });
    await single(app.audit, (tx) => app.store.approvals.consumeVerifyLink(tx, row.id), true);
    await app.audit.record({ ...base, event: 'mfa.verified', detail: { request_id: row.id, target, channel: 'page' } });
    if (!d.ok) return void res.status(409).send(gone());
    res.send(
      page(
        'Confirmed',
        `<h1 class="ok" data-testid="confirmed">Confirmed</h1><p>${esc(row.summary)} — this will happen in a few seconds. You can close this page.</p>`,
      ),
    );
  });
  return r;
}
