/**
 * The approver console's pages, rendered on the server as plain strings. No framework and no external assets:
 * the Content-Security-Policy allows nothing but inline styles and same-origin forms. Every dynamic value goes
 * through `esc` (text and attribute contexts alike); URLs built from ids also go through encodeURIComponent.
 */
import { capLines } from '../guard/caps-view.js';
import type { ApprovalRow } from '../store/ports/index.js';
import type { AuditRow } from '../store/ports/index.js';
import type { KillSwitchState } from '../store/ports/index.js';
import type { LiveJob } from './console-jobs.js';

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface ConsoleView {
  /** Where the router is mounted, e.g. "/console": every form action is absolute under it. */
  base: string;
  principal: string;
  /** OAuth sign-ins: the person. */
  user?: string | undefined;
  csrf: string;
  flash: Flash | undefined;
  killSwitch: KillSwitchState;
  pending: ApprovalRow[];
  recent: ApprovalRow[];
  /** Absent when the approver lacks audit:read. */
  audit: AuditRow[] | undefined;
  /** Requests created after this time (the approver's previous view) are marked new; undefined marks none. */
  newSince?: number | undefined;
  /** Where the live-update script is served (same origin; the CSP allows no inline script). */
  liveScript?: string | undefined;
  /** The live install job of executed software_install requests, by request id (console-jobs.ts). */
  jobs?: ReadonlyMap<string, LiveJob> | undefined;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};
/** HTML-escapes for both text and quoted attribute values. */
export const esc = (v: unknown): string =>
  (v === null || v === undefined ? '' : String(v)).replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);

const utc = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, ' UTC');

/**
 * A time: UTC in the page (what a viewer without script sees), machine-readable in `datetime`, and UTC on hover
 * (`title`); the live script (console-live.ts) shows the text in the viewer's own time zone.
 */
const time = (ms: number | null): string =>
  ms === null
    ? ''
    : `<time datetime="${new Date(ms).toISOString()}" title="${esc(utc(ms))}" data-local>${esc(utc(ms))}</time>`;

const CSS = `
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#f5f6f8}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1rem;padding:.6rem 1.2rem;background:#1f2a37;color:#fff}
header h1{font-size:1.05rem;margin:0;flex:1 1 12rem}
main{padding:1rem 1.2rem;max-width:1400px}
section{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:.8rem 1rem;margin-bottom:1rem;min-width:0}
h2{font-size:1rem;margin:.1rem 0 .6rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #e6e8eb;overflow-wrap:anywhere}
th{font-weight:600;color:#4a5360;font-size:.85rem;white-space:nowrap}
td.id{white-space:nowrap}
td.mono,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3rem 0 0}
input[type=text],input[type=password],textarea{padding:.3rem .45rem;border:1px solid #b8bec7;border-radius:4px;font:inherit;min-width:0;max-width:100%}
button{padding:.3rem .7rem;border-radius:4px;border:1px solid #8a929d;background:#fff;font:inherit;cursor:pointer;flex:none}
button.approve{background:#1a7f37;border-color:#1a7f37;color:#fff}
button.deny,button.engage{background:#b42318;border-color:#b42318;color:#fff}
header button{background:transparent;color:#fff;border-color:#9aa5b1}
.flash{padding:.55rem .8rem;border-radius:4px;margin-bottom:1rem}
.flash.ok{background:#e6f4ea;border:1px solid #1a7f37}
.flash.error{background:#fdecea;border:1px solid #b42318}
.state{font-weight:700}
.state.engaged{color:#b42318}.state.off{color:#1a7f37}
.muted{color:#5f6b7a}
.signin{max-width:420px;margin:4rem auto}
ul.caps{margin:0;padding-left:1rem}
form{max-width:100%}
form.inline{display:flex;flex-wrap:wrap;gap:.3rem;align-items:center}
form.inline input[type=text]{flex:1 1 12rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,24rem),1fr));gap:.8rem}
article.card{border:1px solid #d9dde3;border-radius:6px;padding:.6rem .75rem;min-width:0;background:#fff}
article.card.new{border-color:#0969da;box-shadow:0 0 0 2px #0969da33}
.badge{display:none;font-size:.75rem;font-weight:700;color:#fff;background:#0969da;border-radius:3px;padding:0 .35rem;margin-left:.4rem}
article.card.new .badge{display:inline-block}
.card h3{font-size:.95rem;margin:0 0 .4rem;overflow-wrap:anywhere}
.decision{display:flex;flex-direction:column;gap:.35rem;margin:.2rem 0 .5rem;padding:.45rem;background:#f5f6f8;border-radius:4px}
form.decide{display:flex;gap:.3rem;align-items:flex-start;margin:0}
form.decide textarea,form.decide input[type=text]{flex:1 1 auto;width:0;resize:vertical}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.15rem .6rem;margin:0}
dl.facts dt{color:#5f6b7a;font-size:.85rem}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.live{font-size:.8rem}
`;

function page(title: string, body: string, script?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin"><title>${esc(title)}</title><style>${CSS}</style>${script ? `<script src="${esc(script)}" defer></script>` : ''}</head>
<body>${body}</body></html>`;
}

const flashBox = (f: Flash | undefined): string =>
  f
    ? `<div class="flash ${f.kind === 'ok' ? 'ok' : 'error'}" role="status" data-testid="flash">${esc(f.text)}</div>`
    : '';

export function signInPage(base: string, message?: string): string {
  return page(
    'itguard console — sign in',
    `<main class="signin"><section>
<h2>itguard approver console</h2>
${message ? flashBox({ kind: 'error', text: message }) : ''}
<form method="post" action="${esc(base)}/login">
<p><label for="token">Approver token</label><br>
<input type="password" id="token" name="token" autocomplete="off" required size="40" data-testid="token-input"></p>
<p><button type="submit" data-testid="sign-in">Sign in</button></p>
</form>
<p class="muted">Create one with <span class="mono">itguard token create --principal &lt;approver&gt;</span>; the principal needs the <span class="mono">approvals:decide</span> scope. Where the server accepts your identity provider's tokens, an access token for it works too.</p>
</section></main>`,
  );
}

export function messagePage(title: string, text: string, base: string): string {
  return page(
    `itguard console — ${title}`,
    `<main class="signin"><section><h2>${esc(title)}</h2><p>${esc(text)}</p><p><a href="${esc(base)}">Back to the console</a></p></section></main>`,
  );
}

const hidden = (csrf: string) => `<input type="hidden" name="csrf" value="${esc(csrf)}">`;

function killSwitchSection(v: ConsoleView): string {
  const ks = v.killSwitch;
  const state = ks.engaged
    ? `<span class="state engaged" data-testid="killswitch-state">ENGAGED</span>`
    : `<span class="state off" data-testid="killswitch-state">off</span>`;
  const since = ks.changedAt
    ? ` <span class="muted">since ${time(ks.changedAt)}${ks.actor ? ` by ${esc(ks.actor)}` : ''}${ks.reason ? ` — ${esc(ks.reason)}` : ''}</span>`
    : '';
  const form = ks.engaged
    ? `<form method="post" action="${esc(v.base)}/resume" class="inline">${hidden(v.csrf)}
<input type="text" name="reason" placeholder="reason (optional)" maxlength="500" size="40" data-testid="resume-reason">
<button type="submit" data-testid="resume">Resume</button></form>`
    : `<form method="post" action="${esc(v.base)}/kill" class="inline">${hidden(v.csrf)}
<input type="text" name="reason" placeholder="reason (required)" required maxlength="500" size="40" data-testid="kill-reason">
<button type="submit" class="engage" data-testid="engage">Engage kill switch</button></form>`;
  return `<section data-testid="killswitch" data-state="${ks.engaged ? 'engaged' : 'off'}"><h2>Kill switch: ${state}${since}</h2>${form}</section>`;
}

/**
 * One request as a card, the decision first: Approve and Deny sit at the top of the card, above the facts, so they
 * are on screen at any width (the cards reflow to one column on a phone; long arguments wrap inside the card).
 */
function pendingCard(r: ApprovalRow, v: ConsoleView): string {
  const id = encodeURIComponent(r.id);
  const caps = capLines(r.caps);
  const capsCell = caps.length
    ? `<ul class="caps">${caps.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>`
    : '<span class="muted">none</span>';
  const action = `${esc(v.base)}/requests/${esc(id)}`;
  const isNew = v.newSince !== undefined && r.created_at > v.newSince;
  // Security: Approve and Deny are two forms. Pressing Enter in a text field submits that field's form through its
  // first submit button (implicit submission), so the approve form has no single-line text field at all: its note
  // is a textarea, where Enter is a new line, and Approve only ever happens by activating the Approve button. The
  // note field that Enter does submit belongs to the deny form, whose only button is Deny. The decision travels as
  // the clicked button's value; the server refuses a post without one.
  // Security: an mfa request is the target user's to confirm with their own code; an approver may only deny it.
  const approve =
    r.tier === 'approval'
      ? `<form method="post" action="${action}" class="decide">${hidden(v.csrf)}
<textarea name="note" rows="1" maxlength="500" placeholder="approval note" aria-label="Note for the approval" data-testid="approve-note-${esc(r.id)}"></textarea>
<button type="submit" name="decision" value="approve" class="approve" data-testid="approve-${esc(r.id)}">Approve</button></form>`
      : `<div class="muted">awaiting ${esc(r.target ?? 'the user')}'s code</div>`;
  return `<article class="card${isNew ? ' new' : ''}" data-request-id="${esc(r.id)}" data-testid="pending-${esc(r.id)}">
<h3><span data-testid="summary-title">${esc(r.summary)}</span><span class="badge" data-testid="new-badge">NEW</span></h3>
<div class="decision">${approve}
<form method="post" action="${action}" class="decide">${hidden(v.csrf)}
<input type="text" name="note" placeholder="reason for denying" maxlength="500" aria-label="Reason for denying" data-testid="note-${esc(r.id)}">
<button type="submit" name="decision" value="deny" class="deny" data-testid="deny-${esc(r.id)}">Deny</button></form></div>
<dl class="facts">
<dt>Request</dt><dd class="mono">${esc(r.id)} <span class="muted">${esc(r.tier)}</span></dd>
<dt>Requested by</dt><dd data-testid="requester">${esc(r.principal)}${onBehalfOf(r)}</dd>
<dt>Tool</dt><dd class="mono">${esc(r.tool)}</dd>
<dt>Target</dt><dd data-testid="target">${esc(r.target ?? '')}</dd>
<dt>Summary</dt><dd data-testid="summary">${esc(r.summary)}<details><summary class="muted">arguments</summary><pre class="mono">${esc(prettyArgs(r.args))}</pre></details></dd>
<dt>Agent's reason</dt><dd data-testid="reason">${esc(r.reason)}</dd>
<dt>Caps it would spend</dt><dd data-testid="caps">${capsCell}</dd>
<dt>Created</dt><dd>${time(r.created_at)}</dd>
<dt>Expires</dt><dd>${time(r.expires_at)}</dd>
</dl></article>`;
}

/** The human the agent acted for (OAuth), under the principal: approvers see whose request it is. */
const onBehalfOf = (r: ApprovalRow): string =>
  r.on_behalf_of
    ? `<br><span class="muted">on behalf of</span> <span data-testid="on-behalf-of">${esc(r.on_behalf_of)}</span>`
    : '';

function prettyArgs(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}

function pendingSection(v: ConsoleView): string {
  const cards = v.pending.length
    ? v.pending.map((r) => pendingCard(r, v)).join('\n')
    : `<p class="muted" data-testid="no-pending">No requests are waiting for a decision.</p>`;
  return `<section data-testid="pending"><h2>Pending requests (<span data-testid="pending-count">${v.pending.length}</span>) <span class="muted live" data-testid="live-status"></span></h2>
<div class="cards" data-testid="pending-cards">${cards}</div></section>`;
}

/**
 * What an executed request reported, first line of its result text: for an approved install, the install job's
 * state as the deployment backend gave it ("queued as job …", "requested and is pending — not installed yet").
 */
export function outcomeText(result: string | null): string {
  if (!result) return '';
  try {
    const r = JSON.parse(result) as { content?: { type?: string; text?: string }[] };
    const text = r.content?.find((c) => c.type === 'text')?.text ?? '';
    const line = text.split('\n').find((l) => l.trim()) ?? '';
    return line.length > 200 ? `${line.slice(0, 199)}…` : line;
  } catch {
    return '';
  }
}

/**
 * The Outcome cell: for an executed install, the job's state as the deployment backend reports it now (the
 * recorded result said what it was when the install ran); the recorded result, with a note, when the backend
 * could not be read in time.
 */
function outcomeCell(r: ApprovalRow, v: ConsoleView): string {
  const recorded = esc(outcomeText(r.result));
  const job = v.jobs?.get(r.id);
  if (!job || job.kind === 'none') return recorded;
  if (job.kind === 'unavailable')
    return `${recorded}<br><span class="muted" data-testid="job-note">Live job state unavailable: ${esc(job.why)}; this is the result recorded when the install ran.</span>`;
  const at = Date.parse(job.updatedAt);
  return `<span data-testid="job-state" data-state="${esc(job.state)}">Install job <span class="mono">${esc(job.id)}</span>: <strong>${esc(job.state.replace('_', ' '))}</strong></span>${job.error ? ` <span data-testid="job-error">(${esc(job.error)})</span>` : ''}<br><span class="muted">live from the deployment backend${Number.isFinite(at) ? `, updated ${time(at)}` : ''}</span>`;
}

function recentSection(v: ConsoleView): string {
  const rows = v.recent.length
    ? v.recent
        .map(
          (
            r,
          ) => `<tr data-testid="recent-${esc(r.id)}"><td class="mono id">${esc(r.id)}</td><td data-testid="status">${esc(r.status)}</td><td>${esc(r.principal)}${onBehalfOf(r)}</td><td class="mono">${esc(r.tool)}</td>
<td>${esc(r.summary)}</td><td data-testid="decided-by">${esc(r.decided_by ?? '')}</td><td>${time(r.decided_at)}</td><td data-testid="note">${esc(r.note ?? '')}</td><td data-testid="outcome">${outcomeCell(r, v)}</td></tr>`,
        )
        .join('\n')
    : `<tr><td colspan="9" class="muted">No decided requests yet.</td></tr>`;
  return `<section data-testid="recent"><h2>Recent requests</h2>
<div class="scroll"><table><thead><tr><th>Request</th><th>Status</th><th>Requested by</th><th>Tool</th><th>Summary</th><th>Decided by</th><th>Decided</th><th>Note</th><th>Outcome</th></tr></thead>
<tbody>${rows}</tbody></table></div></section>`;
}

function auditSection(v: ConsoleView): string {
  if (!v.audit)
    return '<section data-testid="audit"><h2>Recent audit</h2><p class="muted">Needs the audit:read scope.</p></section>';
  const rows = v.audit
    .slice()
    .reverse()
    .map(
      (
        a,
      ) => `<tr data-testid="audit-${esc(a.seq)}"><td class="mono">${esc(a.seq)}</td><td>${time(a.ts)}</td><td class="mono">${esc(a.event)}</td><td>${esc(a.actor)}</td><td>${esc(a.on_behalf_of ?? '')}</td>
<td class="mono">${esc(a.tool ?? '')}</td><td>${esc(a.outcome ?? '')}</td><td class="mono">${esc(a.code ?? '')}</td></tr>`,
    )
    .join('\n');
  return `<section data-testid="audit"><h2>Recent audit (newest first)</h2>
<div class="scroll"><table><thead><tr><th>Seq</th><th>Time</th><th>Event</th><th>Actor</th><th>On behalf of</th><th>Tool</th><th>Outcome</th><th>Code</th></tr></thead>
<tbody>${rows || '<tr><td colspan="8" class="muted">The audit is empty.</td></tr>'}</tbody></table></div></section>`;
}

/** The sections the live script refreshes (everything under the flash), also served alone as `<base>/live`. */
export function consoleMain(v: ConsoleView): string {
  return `${killSwitchSection(v)}
${pendingSection(v)}
${recentSection(v)}
${auditSection(v)}`;
}

export function consolePage(v: ConsoleView): string {
  return page(
    'itguard console',
    `<header><h1>itguard approver console</h1>
<span>Signed in as <strong data-testid="principal">${esc(v.principal)}</strong>${v.user ? ` <span class="muted" data-testid="user">(${esc(v.user)})</span>` : ''}</span>
<form method="post" action="${esc(v.base)}/logout">${hidden(v.csrf)}<button type="submit" data-testid="sign-out">Sign out</button></form></header>
<main data-live="${esc(v.base)}/live">${flashBox(v.flash)}
<div id="live">${consoleMain(v)}</div></main>`,
    v.liveScript,
  );
}
