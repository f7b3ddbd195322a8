/**
 * The approver console's one script, served same-origin at `<base>/live.js` (the CSP allows `script-src 'self'` and
 * nothing inline). Without it the console still works: every action is a plain form, times read in UTC.
 *
 * It does three things:
 *  - times: each `<time data-local>` shows the viewer's own time zone; the UTC time stays on hover (`title`);
 *  - live updates: every LIVE_POLL_MS it fetches `<base>/live` (the same server-rendered sections, with the
 *    session cookie) and merges them without a reload. Pending requests are merged card by card, keyed by request
 *    id: a decided or expired request's card goes, a new one is inserted and marked NEW, and the cards already on
 *    screen are left alone, so a note being typed is never lost. The kill switch, recent and audit sections are
 *    replaced when the server's copy changed (the kill switch not while its reason field has the focus);
 *  - a sign-out or an expired session stops the polling and says so.
 * Polling rather than server-sent events: one short GET, answered by whichever replica, with no connection held per
 * open console and nothing to resume after a proxy drops an idle stream.
 */
export const LIVE_POLL_MS = 3000;

export const LIVE_SCRIPT = `(() => {
  'use strict';
  const fmt = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
    timeZoneName: 'short',
  });
  const localize = (root) => {
    for (const t of root.querySelectorAll('time[data-local]')) {
      const d = new Date(t.getAttribute('datetime'));
      if (!Number.isNaN(d.getTime())) t.textContent = fmt.format(d);
    }
  };
  localize(document);
  const main = document.querySelector('main[data-live]');
  const live = document.getElementById('live');
  if (!main || !live) return;
  const url = main.getAttribute('data-live');
  const raw = new Map();
  const setStatus = (text) => {
    const s = live.querySelector('[data-testid="live-status"]');
    if (s) s.textContent = text;
  };
  const typingIn = (el) => {
    const a = document.activeElement;
    return !!a && el.contains(a) && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA');
  };
  const replaceSection = (name, next) => {
    const cur = live.querySelector('[data-testid="' + name + '"]');
    if (!cur || !next) return;
    const html = next.outerHTML;
    if (raw.get(name) === html) return;
    if (name === 'killswitch' && (cur.getAttribute('data-state') === next.getAttribute('data-state') || typingIn(cur))) {
      raw.set(name, html);
      return;
    }
    const node = document.importNode(next, true);
    localize(node);
    cur.replaceWith(node);
    raw.set(name, html);
  };
  const mergeCards = (doc) => {
    const cards = live.querySelector('[data-testid="pending-cards"]');
    const nextCards = doc.querySelector('[data-testid="pending-cards"]');
    if (!cards || !nextCards) return;
    const incoming = Array.from(nextCards.querySelectorAll('article[data-request-id]'));
    const ids = new Set(incoming.map((a) => a.getAttribute('data-request-id')));
    for (const a of cards.querySelectorAll('article[data-request-id]'))
      if (!ids.has(a.getAttribute('data-request-id'))) a.remove();
    let prev = null;
    for (const n of incoming) {
      const id = n.getAttribute('data-request-id');
      let cur = Array.from(cards.querySelectorAll('article[data-request-id]')).find(
        (a) => a.getAttribute('data-request-id') === id,
      );
      if (!cur) {
        cur = document.importNode(n, true);
        cur.classList.add('new');
        localize(cur);
        if (prev) prev.after(cur);
        else cards.prepend(cur);
      }
      prev = cur;
    }
    const empty = cards.querySelector('[data-testid="no-pending"]');
    if (incoming.length && empty) empty.remove();
    if (!incoming.length && !empty) {
      const e = nextCards.querySelector('[data-testid="no-pending"]');
      if (e) cards.append(document.importNode(e, true));
    }
    const count = live.querySelector('[data-testid="pending-count"]');
    if (count) count.textContent = String(incoming.length);
  };
  const tick = async () => {
    let res;
    try {
      res = await fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { accept: 'text/html' } });
    } catch {
      setStatus('offline, retrying');
      return setTimeout(tick, ${LIVE_POLL_MS});
    }
    if (res.status === 401 || res.status === 403) return setStatus('signed out: reload the page to sign in again');
    if (!res.ok) {
      setStatus('update failed, retrying');
      return setTimeout(tick, ${LIVE_POLL_MS});
    }
    const doc = new DOMParser().parseFromString('<div>' + (await res.text()) + '</div>', 'text/html');
    for (const name of ['killswitch', 'recent', 'audit']) replaceSection(name, doc.querySelector('[data-testid="' + name + '"]'));
    mergeCards(doc);
    setStatus('live, updated ' + new Date().toLocaleTimeString());
    setTimeout(tick, ${LIVE_POLL_MS});
  };
  setStatus('live');
  setTimeout(tick, ${LIVE_POLL_MS});
})();
`;
