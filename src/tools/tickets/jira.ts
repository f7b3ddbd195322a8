/**
 * Jira Cloud tickets adapter (`backends.tickets.kind: jira`), REST API v3.
 *
 * Client: plain `fetch` + zod, not jira.js. jira.js 6 needs Node 22 (itguard supports Node 20); 5.x runs on 20 but
 * is a large dependency whose ADF bodies are untyped (Atlassian's OpenAPI does not type ADF) and whose retry and
 * abort behaviour is its own. We use nine
 * endpoints; with fetch every response is validated by a zod schema (jira-map.ts), and retries, Retry-After, the
 * per-call deadline, the abort signal and "never resend a create whose answer was lost" are ours to get right
 * (jira-http.ts). Redirects are refused, so the Authorization header can never follow one to another host.
 *
 * Idempotency of create (the request id is the pipeline's idempotency key; only its SHA-256 goes to Jira):
 * - Every issue is created with the label `itguard-req-<sha256>` and, atomically in the same POST, the entity
 *   property `itguard.request` {request_id_sha256, actor}. Entity properties are not JQL-searchable without an
 *   app, so the label finds the issue; the property confirms it (a label copied by hand onto another issue, without
 *   the property, is ignored).
 * - Before POSTing, the label is searched once: a retry of a request that already created its issue replays it.
 * - When the POST's answer is lost (socket dropped, 5xx, timeout, abort) the POST is never resent. The label is
 *   searched with bounded waiting (`indexWaitMs`, the search index lags a create). Found → that issue. Still not
 *   found → a retryable BackendError with `details.outcome_unknown`, and the request id is remembered as unknown:
 *   until it is found, or `unknownSettleMs` passes (far beyond any index lag: a create that is still not
 *   searchable by then never committed), neither `create` nor `findByRequest` treats it as "did not happen".
 * - Residual risk, said plainly: after a *process crash* mid-create the memory is gone; `findByRequest` then waits
 *   `indexWaitMs` and create searches once more before POSTing. Only an index lag longer than both could repeat it.
 *
 * Idempotency of comment (label-free): the comment is POSTed with the comment property `itguard.request`
 * {request_id_sha256, actor} in the same request. Before posting, and after a lost answer, the issue's comments
 * are read newest first with `expand=properties` (a database read, not the lagging index) and a comment carrying
 * the property replays. No visible marker in the text, no label per comment. `findByRequest` can only find a
 * comment when it knows the issue: from this process's memory, or from the optional `key` hint (the port does not
 * carry it yet); without it a comment request id reads as not found, which is still safe because a
 * re-run `comment()` finds the property first and does not post twice.
 *
 * Requester: an active Jira account whose e-mail equals the requester's becomes the reporter (user search by
 * e-mail; when Jira hides e-mail addresses, a search for the full address that returns exactly one account is taken
 * as the match). Otherwise, or when Jira refuses to set the reporter, the description gets a line naming the
 * requester. The label `requester-<username>` is set on every issue: it is how the port's `requester` is read
 * back and searched, whichever way the reporter was set.
 *
 * Layout: this file holds the port's semantics (idempotency, unknown outcomes, confinement); jira-api.ts the read
 * endpoints; jira-http.ts the transport and retry policy; jira-map.ts the shapes, status mapping and priorities;
 * jira-adf.ts the ADF conversion. Secrets (e-mail, API token) are passed in, kept in the transport only, never
 * logged and never in an error.
 */
import { isLoopbackHost } from '../../loopback.js';
import { createHash } from 'node:crypto';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import type { Comment, NewTicket, Ticket, TicketQuery, TicketsPort } from '../../core/ports/tickets.js';
import { adfFromText } from './jira-adf.js';
import { JiraApi } from './jira-api.js';
import {
  deadline,
  failure,
  JiraHttp,
  OutcomeUnknown,
  sleep,
  type Deadline,
  type JiraRequest,
  type JiraResponse,
} from './jira-http.js';
import {
  CommentSchema,
  CreatedSchema,
  ISSUE_FIELDS,
  JIRA_PRIORITY,
  jqlString,
  MyPermissionsSchema,
  MyselfSchema,
  REQUEST_LABEL_PREFIX,
  REQUEST_PROPERTY,
  REQUESTER_LABEL_PREFIX,
  STATUS_JQL,
  textTerms,
  toComment,
  toTicket,
  type JiraComment,
} from './jira-map.js';

export interface JiraConfig {
  /** https://<site>.atlassian.net; `http://` only for loopback hosts (tests, a local stand-in). */
  baseUrl: string;
  email: string;
  apiToken: string;
  /** The issue type name to create, e.g. Task. */
  issueType: string;
  /** Budget of one port call, retries and index waits included. Default 15 s. */
  timeoutMs?: number;
  /** Retries of one HTTP request on 429/503/network errors. Default 4. */
  maxRetries?: number;
  /** How long to wait for the search index to show a just-created issue. Default 3 s. */
  indexWaitMs?: number;
  /** Backoff base without Retry-After. Default 500 ms (cap 8 s, full jitter). */
  retryBaseMs?: number;
  /** How long a write with a lost answer stays "unknown" before a missing label proves it never committed. Default 120 s. */
  unknownSettleMs?: number;
  fetch?: typeof fetch;
  random?: () => number;
}

const PERMISSIONS = ['BROWSE_PROJECTS', 'CREATE_ISSUES', 'ADD_COMMENTS'] as const;
const KEY = /^[A-Z][A-Z0-9_]{0,254}-\d{1,18}$/i;
const MAX_SEARCH_PAGES = 20;
const MAX_REMEMBERED = 10_000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export class JiraTickets implements TicketsPort {
  readonly kind = 'jira';
  readonly #http: JiraHttp;
  private readonly api: JiraApi;
  private readonly base: URL;
  private readonly issueType: string;
  private readonly timeoutMs: number;
  private readonly indexWaitMs: number;
  private readonly settleMs: number;
  /** Request hashes whose write may have committed unseen → when that was noticed. */
  private readonly unknown = new Map<string, number>();
  /** Comment request hash → issue key, so findByRequest can look a comment up on its issue. */
  private readonly commentKeys = new Map<string, string>();

  constructor(cfg: JiraConfig) {
    let u: URL;
    try {
      u = new URL(cfg.baseUrl);
    } catch {
      throw new Error('backends.tickets.base_url: not a URL');
    }
    if (u.username || u.password) throw new Error('backends.tickets.base_url: must not carry credentials');
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname)))
      throw new Error('backends.tickets.base_url: must be https:// (http:// only for loopback hosts)');
    if (!cfg.email || !cfg.apiToken) throw new Error('backends.tickets: the Jira e-mail and API token are required');
    if (!cfg.issueType) throw new Error('backends.tickets.issue_type: required');
    this.base = new URL(`${u.origin}${u.pathname.replace(/\/+$/, '')}/`);
    this.issueType = cfg.issueType;
    this.timeoutMs = cfg.timeoutMs ?? 15_000;
    this.indexWaitMs = cfg.indexWaitMs ?? 3_000;
    this.settleMs = cfg.unknownSettleMs ?? 120_000;
    this.#http = new JiraHttp({
      baseUrl: this.base,
      email: cfg.email,
      apiToken: cfg.apiToken,
      maxRetries: cfg.maxRetries ?? 4,
      retryBaseMs: cfg.retryBaseMs ?? 500,
      fetch: cfg.fetch ?? fetch,
      random: cfg.random ?? Math.random,
    });
    this.api = new JiraApi(this.#http);
  }

  async create(t: NewTicket, o: WriteOpts & { actor: string }): Promise<{ ticket: Ticket; replayed: boolean }> {
    const d = deadline(o.signal, this.timeoutMs);
    const hash = sha256(o.requestId);
    const what = `creating an issue in ${t.project}`;
    const pending = this.isUnknown(hash);
    const lookup = this.api.issueByRequest(hash, [t.project], d, pending ? this.indexWaitMs : 0);
    const prior = await (pending ? this.stillUnknown(lookup) : lookup);
    if (prior) {
      this.unknown.delete(hash);
      return { ticket: toTicket(prior), replayed: true };
    }
    // Idempotency: a create whose outcome is still unknown is never sent again; the caller retries later.
    if (pending) throw this.unknownError(hash, what);
    const reporter = t.requesterEmail ? await this.api.accountFor(t.requesterEmail, d) : undefined;
    let key: string;
    let description: string;
    try {
      ({ key, description } = await this.postIssue(t, o.actor, hash, reporter, d, what));
    } catch (e) {
      if (!(e instanceof OutcomeUnknown)) throw e;
      this.remember(this.unknown, hash, Date.now());
      const found = await this.api.issueByRequest(hash, [t.project], d, this.indexWaitMs).catch(() => undefined);
      if (!found) throw this.unknownError(hash, what, e.why, d);
      this.unknown.delete(hash);
      return { ticket: toTicket(found), replayed: false };
    }
    // The issue exists now: a failed read-back must not turn the create into an error.
    const read = await this.api.getIssue(key, d).catch(() => undefined);
    const now = new Date().toISOString();
    const ticket = read
      ? toTicket(read)
      : {
          key,
          project: t.project,
          summary: t.summary,
          description,
          requester: t.requester,
          priority: t.priority,
          status: 'open' as const,
          createdBy: o.actor,
          createdAt: now,
          updatedAt: now,
        };
    return { ticket, replayed: false };
  }

  async comment(
    key: string,
    body: string,
    o: WriteOpts & { actor: string },
  ): Promise<{ comment: Comment; replayed: boolean } | undefined> {
    if (!KEY.test(key)) return undefined;
    const d = deadline(o.signal, this.timeoutMs);
    const hash = sha256(o.requestId);
    const what = `commenting on ${key}`;
    this.remember(this.commentKeys, hash, key);
    const lookup = this.api.commentByRequest(key, hash, d);
    const prior = await (this.isUnknown(hash) ? this.stillUnknown(lookup) : lookup);
    if (prior === undefined) return undefined;
    if (prior) {
      this.unknown.delete(hash);
      return { comment: toComment(prior), replayed: true };
    }
    // Idempotency: a comment whose outcome is still unknown is never posted again.
    if (this.isUnknown(hash)) throw this.unknownError(hash, what);
    const stamp = { key: REQUEST_PROPERTY, value: { request_id_sha256: hash, actor: o.actor } };
    try {
      const res = await this.#http.send(
        {
          method: 'POST',
          path: `rest/api/3/issue/${encodeURIComponent(key)}/comment`,
          body: { body: adfFromText(body), properties: [stamp] },
          what,
          unsafe: true,
        },
        d,
      );
      if (res.status === 404) return undefined;
      if (res.status !== 201 && res.status !== 200) throw failure(res, what);
      const c = CommentSchema.safeParse(res.body);
      if (!c.success) throw new OutcomeUnknown('unreadable answer to the comment');
      return { comment: { ...toComment(c.data), author: o.actor }, replayed: false };
    } catch (e) {
      if (!(e instanceof OutcomeUnknown)) throw e;
      this.remember(this.unknown, hash, Date.now());
      const found = await this.waitForComment(key, hash, d).catch(() => undefined);
      if (!found) throw this.unknownError(hash, what, e.why, d);
      this.unknown.delete(hash);
      return { comment: toComment(found), replayed: false };
    }
  }

  async get(key: string, o: CallOpts): Promise<(Ticket & { comments: Comment[] }) | undefined> {
    if (!KEY.test(key)) return undefined;
    const d = deadline(o.signal, this.timeoutMs);
    const issue = await this.api.getIssue(key, d);
    if (!issue) return undefined;
    const comments = (await this.api.listComments(issue.key, d, 'created')) ?? [];
    return { ...toTicket(issue), comments: comments.map(toComment) };
  }

  async search(q: TicketQuery, o: CallOpts): Promise<Ticket[]> {
    // Security: a search is never unbounded; the allowed projects are ANDed into every JQL.
    if (q.projects.length === 0) throw new BackendError('A ticket search needs at least one allowed project.', false);
    const clauses = [`project in (${q.projects.map(jqlString).join(', ')})`];
    if (q.text) {
      const terms = textTerms(q.text);
      if (!terms) return [];
      clauses.push(`text ~ ${jqlString(terms)}`);
    }
    if (q.status) clauses.push(STATUS_JQL[q.status]);
    if (q.requester) clauses.push(`labels = ${jqlString(REQUESTER_LABEL_PREFIX + q.requester)}`);
    const jql = `${clauses.join(' AND ')} ORDER BY created DESC`;
    const d = deadline(o.signal, this.timeoutMs);
    const out: Ticket[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_SEARCH_PAGES && out.length < q.limit; page++) {
      const res = await this.api.searchPage(
        {
          jql,
          fields: ISSUE_FIELDS,
          properties: [REQUEST_PROPERTY],
          // Statuses that share a category are told apart here, so take full pages for them.
          maxResults: q.status && q.status !== 'open' ? 100 : Math.min(100, q.limit - out.length),
          ...(token ? { nextPageToken: token } : {}),
        },
        d,
        'searching issues',
      );
      for (const issue of res.issues) {
        const t = toTicket(issue);
        // Security: belt and braces; an issue of another project never leaves the adapter.
        if (!q.projects.includes(t.project) || (q.status && t.status !== q.status)) continue;
        if (out.push(t) >= q.limit) break;
      }
      if (res.isLast || !res.nextPageToken) break;
      token = res.nextPageToken;
    }
    return out;
  }

  /**
   * `key` (optional, beyond the port): the issue a comment request was for, so a comment can be found after a
   * restart. Any retryable failure here carries `outcome_unknown`: the question "did it happen" stays open.
   */
  async findByRequest(
    requestId: string,
    o: CallOpts & { key?: string | undefined; projects: readonly string[] },
  ): Promise<{ kind: 'ticket' | 'comment'; key: string; commentId?: string } | undefined> {
    const d = deadline(o.signal, this.timeoutMs);
    const hash = sha256(requestId);
    const found = await this.stillUnknown(this.lookupRequest(hash, o.key ?? this.commentKeys.get(hash), o.projects, d));
    if (found) return found;
    if (this.isUnknown(hash)) throw this.unknownError(hash, 'looking the request up');
    return undefined;
  }

  private async lookupRequest(
    hash: string,
    commentKey: string | undefined,
    projects: readonly string[],
    d: Deadline,
  ): Promise<{ kind: 'ticket' | 'comment'; key: string; commentId?: string } | undefined> {
    if (commentKey) {
      const c = await this.api.commentByRequest(commentKey, hash, d);
      if (!c) return undefined;
      this.unknown.delete(hash);
      return { kind: 'comment', key: commentKey, commentId: c.id };
    }
    const i = await this.api.issueByRequest(hash, projects, d, this.indexWaitMs);
    if (!i) return undefined;
    this.unknown.delete(hash);
    return { kind: 'ticket', key: i.key };
  }

  async probe(o: CallOpts & { projects: readonly string[] }): Promise<ProbeReport> {
    const d = deadline(o.signal, this.timeoutMs);
    const checks: ProbeReport['checks'] = [];
    const report = (): ProbeReport => ({
      backend: 'jira',
      target: this.base.host,
      ok: checks.length > 0 && checks.every((c) => c.ok),
      checks,
    });
    const note = (name: string, e: unknown) => {
      if (o.signal.aborted) throw e;
      checks.push({ name, ok: false, detail: e instanceof Error ? e.message : String(e) });
    };
    try {
      const me = await this.api.json(MyselfSchema, { method: 'GET', path: 'rest/api/3/myself', what: 'probing' }, d);
      checks.push({ name: 'auth', ok: true, detail: `signed in as ${me.displayName ?? me.accountId}` });
    } catch (e) {
      note('auth', e);
      return report();
    }
    for (const p of o.projects) {
      const req: JiraRequest = {
        method: 'GET',
        path: 'rest/api/3/mypermissions',
        query: { projectKey: p, permissions: PERMISSIONS.join(',') },
        what: `probing project ${p}`,
      };
      try {
        const res = await this.#http.send(req, d);
        if (res.status === 404) {
          checks.push({ name: `project ${p}`, ok: false, detail: 'no such project, or not visible to this account' });
          continue;
        }
        const perms = this.api.parse(MyPermissionsSchema, this.api.ok(res, req.what), req.what).permissions;
        for (const perm of PERMISSIONS) {
          const have = perms[perm]?.havePermission === true;
          checks.push({ name: `${p}: ${perm}`, ok: have, ...(have ? {} : { detail: 'permission missing' }) });
        }
      } catch (e) {
        note(`project ${p}`, e);
      }
    }
    return report();
  }

  // ---- issues ----

  private async postIssue(
    t: NewTicket,
    actor: string,
    hash: string,
    reporter: string | undefined,
    d: Deadline,
    what: string,
  ): Promise<{ key: string; description: string }> {
    const send = async (withReporter: boolean) => {
      const description = withReporter
        ? t.description
        : [
            t.description,
            `Requester: ${t.requester}${t.requesterEmail ? ` <${t.requesterEmail}>` : ''} (no matching Jira account; recorded by itguard)`,
          ]
            .filter(Boolean)
            .join('\n');
      const res = await this.#http.send(
        {
          method: 'POST',
          path: 'rest/api/3/issue',
          body: {
            fields: {
              project: { key: t.project },
              summary: t.summary.replace(/[\r\n]+/g, ' '),
              issuetype: { name: this.issueType },
              ...(description ? { description: adfFromText(description) } : {}),
              labels: [REQUEST_LABEL_PREFIX + hash, REQUESTER_LABEL_PREFIX + t.requester],
              priority: { name: JIRA_PRIORITY[t.priority] },
              ...(withReporter ? { reporter: { accountId: reporter } } : {}),
            },
            properties: [{ key: REQUEST_PROPERTY, value: { request_id_sha256: hash, actor } }],
          },
          what,
          unsafe: true,
        },
        d,
      );
      return { res, description };
    };
    let { res, description } = await send(reporter !== undefined);
    // A 400 is a definite "not created": without the Modify Reporter permission, fall back to the description line.
    if (res.status === 400 && reporter !== undefined && fieldsOf(res).includes('reporter'))
      ({ res, description } = await send(false));
    if (res.status !== 201 && res.status !== 200) throw failure(res, what);
    const c = CreatedSchema.safeParse(res.body);
    if (!c.success) throw new OutcomeUnknown('unreadable answer to the create');
    return { key: c.data.key, description };
  }

  private async waitForComment(key: string, hash: string, d: Deadline): Promise<JiraComment | undefined> {
    const until = Math.min(d.endsAt, Date.now() + this.indexWaitMs);
    for (let i = 0; ; i++) {
      const c = await this.api.commentByRequest(key, hash, d);
      if (c) return c;
      const pause = Math.min(1_000, 150 * 2 ** i);
      if (c === undefined || Date.now() + pause > until) return undefined;
      await sleep(pause, d.signal);
    }
  }

  // ---- plumbing ----

  /** A lookup that could not answer leaves "did it happen" open: a retryable failure says so. */
  private async stillUnknown<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      if (e instanceof BackendError && e.retryable) e.details.outcome_unknown = true;
      throw e;
    }
  }

  private isUnknown(hash: string): boolean {
    const at = this.unknown.get(hash);
    if (at === undefined) return false;
    if (Date.now() - at <= this.settleMs) return true;
    this.unknown.delete(hash);
    return false;
  }

  private remember<V>(m: Map<string, V>, k: string, v: V): void {
    m.delete(k);
    m.set(k, v);
    if (m.size > MAX_REMEMBERED) m.delete(m.keys().next().value as string);
  }

  private unknownError(hash: string, what: string, why?: string, d?: Deadline): BackendError {
    return new BackendError(
      `Jira may or may not have finished ${what}${why ? ` (${why})` : ''}; nothing was sent again. Retry later with the same idempotency key: the request is looked up first.`,
      true,
      {
        outcome_unknown: true,
        request_label: REQUEST_LABEL_PREFIX + hash,
        ...(d?.caller.aborted ? { aborted: true } : {}),
      },
    );
  }
}

function fieldsOf(res: JiraResponse): string[] {
  const errors = (res.body as { errors?: unknown } | undefined)?.errors;
  return typeof errors === 'object' && errors !== null ? Object.keys(errors) : [];
}
