/**
 * The Jira Cloud v3 endpoints the tickets adapter reads, each response validated by its zod schema (jira-map.ts).
 * No policy lives here: what counts as "already done", "unknown" or "safe to send" is decided in jira.ts.
 */
import type { z } from 'zod';
import { BackendError } from '../../core/backend.js';
import { failure, sleep, type Deadline, type JiraHttp, type JiraRequest, type JiraResponse } from './jira-http.js';
import {
  CommentPageSchema,
  EntityPropertySchema,
  IssueSchema,
  ISSUE_FIELDS,
  jqlString,
  REQUEST_LABEL_PREFIX,
  REQUEST_PROPERTY,
  requestPropertyOf,
  SearchPageSchema,
  UsersSchema,
  type JiraComment,
  type JiraIssue,
} from './jira-map.js';

const MAX_COMMENT_PAGES = 20;

export class JiraApi {
  constructor(readonly http: JiraHttp) {}

  async getIssue(key: string, d: Deadline): Promise<JiraIssue | undefined> {
    const what = `reading ${key}`;
    const res = await this.http.send(
      {
        method: 'GET',
        path: `rest/api/3/issue/${encodeURIComponent(key)}`,
        query: { fields: ISSUE_FIELDS.join(','), properties: REQUEST_PROPERTY },
        what,
      },
      d,
    );
    if (res.status === 404) return undefined;
    return this.parse(IssueSchema, this.ok(res, what), what);
  }

  /**
   * The issue a request created: by label within `projects` (Security: every JQL is confined to the allowed
   * projects — an issue elsewhere carrying the label is not this request's), confirmed by the property, waiting up to
   * waitMs for the index.
   */
  async issueByRequest(
    hash: string,
    projects: readonly string[],
    d: Deadline,
    waitMs: number,
  ): Promise<JiraIssue | undefined> {
    if (!projects.length) throw new BackendError('A request lookup needs at least one allowed project.', false);
    const until = Math.min(d.endsAt, Date.now() + waitMs);
    const what = 'looking up an earlier request';
    for (let i = 0; ; i++) {
      const page = await this.searchPage(
        {
          jql: `project in (${projects.map(jqlString).join(', ')}) AND labels = ${jqlString(REQUEST_LABEL_PREFIX + hash)} ORDER BY created ASC`,
          fields: ISSUE_FIELDS,
          properties: [REQUEST_PROPERTY],
          maxResults: 10,
        },
        d,
        what,
      );
      const hit = page.issues.find(
        (x) =>
          requestPropertyOf(x.properties?.[REQUEST_PROPERTY])?.request_id_sha256 === hash &&
          projects.includes(x.fields.project?.key ?? x.key.split('-')[0] ?? ''),
      );
      if (hit) return hit;
      const pause = Math.min(1_000, 150 * 2 ** i);
      if (Date.now() + pause > until) return undefined;
      await sleep(pause, d.signal).catch(() => this.http.checkTime(d, { what }));
    }
  }

  async searchPage(body: Record<string, unknown>, d: Deadline, what: string) {
    return this.json(SearchPageSchema, { method: 'POST', path: 'rest/api/3/search/jql', body, what }, d);
  }

  /** The account id for a requester's e-mail, or undefined (no match, or user search not permitted). */
  async accountFor(email: string, d: Deadline): Promise<string | undefined> {
    const req: JiraRequest = {
      method: 'GET',
      path: 'rest/api/3/user/search',
      query: { query: email, maxResults: 10 },
      what: 'looking up the requester',
    };
    const res = await this.http.send(req, d);
    if (res.status === 403 || res.status === 404) return undefined;
    const users = this.parse(UsersSchema, this.ok(res, req.what), req.what).filter(
      (u) => u.active !== false && (u.accountType ?? 'atlassian') === 'atlassian',
    );
    const exact = users.find((u) => u.emailAddress?.toLowerCase() === email.toLowerCase());
    if (exact) return exact.accountId;
    const only = users.length === 1 ? users[0] : undefined;
    return only && only.emailAddress === undefined ? only.accountId : undefined;
  }

  /** All comments (bounded), in `order`; stops early once `stop` matches. Undefined when the issue does not exist. */
  async listComments(
    key: string,
    d: Deadline,
    order: 'created' | '-created',
    stop?: (c: JiraComment) => boolean,
  ): Promise<JiraComment[] | undefined> {
    const out: JiraComment[] = [];
    const what = `reading the comments of ${key}`;
    for (let page = 0, startAt = 0; page < MAX_COMMENT_PAGES; page++) {
      const res = await this.http.send(
        {
          method: 'GET',
          path: `rest/api/3/issue/${encodeURIComponent(key)}/comment`,
          query: { startAt, maxResults: 100, orderBy: order, expand: 'properties' },
          what,
        },
        d,
      );
      if (res.status === 404) return undefined;
      const p = this.parse(CommentPageSchema, this.ok(res, what), what);
      out.push(...p.comments);
      startAt += p.comments.length;
      if ((stop && p.comments.some(stop)) || !p.comments.length || startAt >= (p.total ?? Infinity)) break;
    }
    return out;
  }

  /** The comment stamped with this request, null when there is none, undefined when the issue does not exist. */
  async commentByRequest(key: string, hash: string, d: Deadline): Promise<JiraComment | null | undefined> {
    const mine = (c: JiraComment) =>
      requestPropertyOf(c.properties?.find((p) => p.key === REQUEST_PROPERTY)?.value)?.request_id_sha256 === hash;
    const all = await this.listComments(key, d, '-created', mine);
    if (!all) return undefined;
    const hit = all.find(mine);
    if (hit) return hit;
    // A site that ignores expand=properties: ask the newest comments for the property one by one.
    for (const c of all.filter((x) => x.properties === undefined).slice(0, 20)) {
      const what = `reading a property of comment ${c.id}`;
      const res = await this.http.send(
        { method: 'GET', path: `rest/api/3/comment/${encodeURIComponent(c.id)}/properties/${REQUEST_PROPERTY}`, what },
        d,
      );
      if (res.status === 404) continue;
      const prop = this.parse(EntityPropertySchema, this.ok(res, what), what);
      if (requestPropertyOf(prop.value)?.request_id_sha256 === hash) return { ...c, properties: [prop] };
    }
    return null;
  }

  async json<T>(schema: z.ZodType<T>, req: JiraRequest, d: Deadline): Promise<T> {
    return this.parse(schema, this.ok(await this.http.send(req, d), req.what), req.what);
  }

  ok(res: JiraResponse, what: string): unknown {
    if (res.status < 200 || res.status > 299) throw failure(res, what);
    return res.body;
  }

  parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
    const r = schema.safeParse(body);
    if (r.success) return r.data;
    const at = r.error.issues
      .slice(0, 3)
      .map((i) => i.path.join('.') || '(root)')
      .join(', ');
    throw new BackendError(`Jira answered in an unexpected shape while ${what} (at ${at}).`, false, { shape: at });
  }
}
