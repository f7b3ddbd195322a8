/**
 * The one-time password reset page the outbox links to, for every directory. The link works once and expires;
 * the new password goes to the directory (embedded: an scrypt hash; LDAP: the user's password) and is never
 * logged, audited or kept by itguard. A password the rules refuse (password-rules.ts), or the directory refuses
 * (its own password policy), is answered with the reason, and the link stays usable for another try.
 */
import express, { type Router } from 'express';
import type { App } from '../app.js';
import { MIN_LENGTH, passwordProblem } from './password-rules.js';
import { esc, page, pageHeaders } from './verify.js';

const RULES = `<ul><li>at least ${MIN_LENGTH} characters; a few words make a good one</li>
<li>not one of the most common passwords, and not your user name or your name</li>
<li>no tabs, line breaks or other control characters</li></ul>`;

export function resetRouter(app: App): Router {
  const resets = app.backends.resets;
  const o = () => ({ signal: AbortSignal.timeout(15_000) });
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '4kb' }));
  const gone = () =>
    page(
      'Link not valid',
      '<h1>This reset link is not valid</h1><p>It was already used or has expired. Ask the IT service desk for a new one.</p>',
    );
  const form = (token: string, user: string, msg = '') =>
    page(
      'Choose a new password',
      `<h1>Choose a new password for ${esc(user)}</h1>${msg}${RULES}
<form method="post" action="/reset/${esc(token)}">
<p><label>New password (at least ${MIN_LENGTH} characters)<br><input type="password" name="password" minlength="${MIN_LENGTH}" required autocomplete="new-password"></label></p>
<p><label>Repeat it<br><input type="password" name="confirm" minlength="${MIN_LENGTH}" required autocomplete="new-password"></label></p>
<button type="submit">Set password</button></form>`,
    );

  r.get('/:token', async (req, res) => {
    pageHeaders(res);
    const link = await resets.link(req.params.token);
    if (!link?.usable) return void res.status(404).send(gone());
    res.send(form(req.params.token, link.username));
  });
  r.post('/:token', async (req, res) => {
    pageHeaders(res);
    const link = await resets.link(req.params.token);
    if (!link?.usable) return void res.status(404).send(gone());
    const { password, confirm } = req.body as { password?: unknown; confirm?: unknown };
    const problem =
      typeof password === 'string'
        ? passwordProblem({
            password,
            confirm,
            username: link.username,
            displayName: await resets.displayName(link.username, o()),
          })
        : 'Enter a new password.';
    if (problem || typeof password !== 'string') {
      // The link is not spent: the user tries again with another password.
      return void res
        .status(400)
        .send(form(req.params.token, link.username, `<p class="err" data-testid="error">${esc(problem)}</p>`));
    }
    const done = await resets.complete(req.params.token, password, o());
    if (!done.ok && 'gone' in done) return void res.status(404).send(gone());
    if (!done.ok)
      return void res
        .status(400)
        .send(form(req.params.token, link.username, `<p class="err" data-testid="error">${esc(done.refused)}</p>`));
    await app.audit.record({
      event: 'password.changed',
      actor: `user:${link.username}`,
      detail: { via: 'reset link' },
    });
    res.send(
      page(
        'Password set',
        `<h1 class="ok">Password set</h1><p>You can now sign in as ${esc(link.username)} with your new password.</p>`,
      ),
    );
  });
  return r;
}
