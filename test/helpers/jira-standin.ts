/**
 * A loopback stand-in for Jira Cloud REST v3, for the adapter's tests. Stateful (issues, comments, issue and comment
 * entity properties, labels, users, per-project permissions) and strict where the real API is strict: Basic auth
 * (401), ADF-only descriptions and comment bodies (400 with `errors.description` / `errors.comment`), field errors
 * as `{errorMessages, errors: {field: message}}`, 403 without the project permission, 404 for what does not exist
 * or cannot be browsed, the enhanced search (`POST /search/jql` with `nextPageToken`, fields and properties only
 * when asked for, unbounded JQL refused).
 *
 * Fault injection: `indexLagMs` (a new issue becomes searchable only that long after its create), `failNext(k, …)`
 * (the next k requests answer 429 or 503, with or without Retry-After), and `dropNext('create' | 'comment')` (the
 * next such write is committed and then its socket destroyed: the client never learns the outcome).
 *
 * The JQL understood is the subset the adapter writes: clauses joined by AND over project (= / in), labels (= / in),
 * text ~, statusCategory (= / in), status (=), then ORDER BY created|key ASC|DESC. Anything else is a 400, so a
 * query the adapter should not write fails loudly here.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Permission = 'BROWSE_PROJECTS' | 'CREATE_ISSUES' | 'ADD_COMMENTS';
export const ALL_PERMISSIONS: Permission[] = ['BROWSE_PROJECTS', 'CREATE_ISSUES', 'ADD_COMMENTS'];
type Category = 'new' | 'indeterminate' | 'done';

export interface StandinUser {
  accountId: string;
  email: string;
  displayName: string;
  active?: boolean;
  /** The user's profile hides the e-mail address (Atlassian's privacy setting). */
  hideEmail?: boolean;
}

export interface StandinOptions {
  email: string;
  apiToken: string;
  /** Project key → the permissions the API account holds there. */
  projects: Record<string, Permission[]>;
  issueTypes?: string[];
  users?: StandinUser[];
  indexLagMs?: number;
  /** Largest page the search returns, whatever maxResults asks (default 100). */
  pageSize?: number;
  /** false: the reporter field is not on the create screen (no Modify Reporter permission). */
  reporterSettable?: boolean;
}

export interface SIssue {
  id: string;
  key: string;
  project: string;
  summary: string;
  description: unknown;
  issuetype: string;
  labels: string[];
  priority: string;
  reporter: string;
  creator: string;
  status: { name: string; category: Category };
  created: number;
  updated: number;
  searchableAt: number;
  properties: Map<string, unknown>;
  comments: SComment[];
}
export interface SComment {
  id: string;
  author: string;
  body: unknown;
  created: number;
  properties: Map<string, unknown>;
}
export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
}

const SERVICE = { accountId: 'svc-itguard', email: 'itguard@example.com', displayName: 'itguard service' };
const PRIORITIES = ['Lowest', 'Low', 'Medium', 'High', 'Highest'];
const CATEGORY_NAMES: Record<string, Category> = {
  'to do': 'new',
  new: 'new',
  '2': 'new',
  'in progress': 'indeterminate',
  indeterminate: 'indeterminate',
  '4': 'indeterminate',
  done: 'done',
  '3': 'done',
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}
const fieldError = (field: string, message: string) =>
  new HttpError(400, { errorMessages: [], errors: { [field]: message } });
const notFound = () =>
  new HttpError(404, { errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} });
const jiraDate = (ms: number) => new Date(ms).toISOString().replace('Z', '+0000');

export class JiraStandin {
  readonly issues: SIssue[] = [];
  readonly requests: SeenRequest[] = [];
  readonly jqls: string[] = [];
  indexLagMs: number;
  private readonly users: StandinUser[];
  private readonly failures: { status: number; retryAfter?: string | undefined }[] = [];
  private readonly drops = new Set<'create' | 'comment'>();
  private readonly counters = new Map<string, number>();
  private nextId = 10_000;
  private server!: Server;
  url = '';

  private constructor(private readonly opts: StandinOptions) {
    this.indexLagMs = opts.indexLagMs ?? 0;
    this.users = [{ ...SERVICE }, ...(opts.users ?? [])];
  }

  /** The search index catches up at once: every issue created so far is searchable from now on. */
  catchUpIndex(): void {
    for (const i of this.issues) i.searchableAt = Math.min(i.searchableAt, Date.now());
  }

  static async start(opts: StandinOptions): Promise<JiraStandin> {
    const s = new JiraStandin(opts);
    s.server = createServer((req, res) => void s.handle(req, res));
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The next `count` requests (any path) answer `status` (429 default), with Retry-After when given. */
  failNext(count: number, o: { status?: 429 | 503; retryAfter?: string } = {}): void {
    for (let i = 0; i < count; i++) this.failures.push({ status: o.status ?? 429, retryAfter: o.retryAfter });
  }

  /** The next create (or comment) is committed, then its connection destroyed before any answer. */
  dropNext(kind: 'create' | 'comment'): void {
    this.drops.add(kind);
  }

  transition(key: string, name: string, category: Category): void {
    const i = this.issue(key);
    if (!i) throw new Error(`no ${key}`);
    i.status = { name, category };
  }

  count(method: string, path: RegExp): number {
    return this.requests.filter((r) => r.method === method && path.test(r.path)).length;
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    let body: unknown;
    try {
      const raw = await readBody(req);
      body = raw ? (JSON.parse(raw) as unknown) : undefined;
    } catch {
      return send(res, 400, { errorMessages: ['Unexpected character in the JSON body.'], errors: {} });
    }
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
    });
    const fail = this.failures.shift();
    if (fail) {
      const headers: Record<string, string> = {};
      if (fail.retryAfter !== undefined) headers['retry-after'] = fail.retryAfter;
      if (fail.status === 429) headers['ratelimit-reason'] = 'jira-quota-tenant-based';
      return send(res, fail.status, { errorMessages: ['Rate limit exceeded.'] }, headers);
    }
    const expected = `Basic ${Buffer.from(`${this.opts.email}:${this.opts.apiToken}`).toString('base64')}`;
    if (req.headers.authorization !== expected)
      return send(res, 401, { errorMessages: ['Client must be authenticated to access this resource.'] });
    try {
      const out = this.route(req.method ?? 'GET', url, body);
      if (out === 'dropped') {
        req.socket.destroy();
        return;
      }
      send(res, out.status, out.body);
    } catch (e) {
      if (e instanceof HttpError) return send(res, e.status, e.body);
      send(res, 500, { errorMessages: [String(e)] });
    }
  }

  private route(method: string, url: URL, body: unknown): { status: number; body: unknown } | 'dropped' {
    const p = url.pathname;
    const q = url.searchParams;
    let m: RegExpMatchArray | null;
    if (method === 'POST' && p === '/rest/api/3/issue') return this.createIssue(body);
    if (method === 'POST' && p === '/rest/api/3/search/jql') return { status: 200, body: this.search(body) };
    if (method === 'GET' && p === '/rest/api/3/myself') return { status: 200, body: this.userJson(SERVICE.accountId) };
    if (method === 'GET' && p === '/rest/api/3/user/search')
      return { status: 200, body: this.userSearch(q.get('query') ?? '') };
    if (method === 'GET' && p === '/rest/api/3/mypermissions') return this.myPermissions(q);
    if ((m = p.match(/^\/rest\/api\/3\/issue\/([^/]+)$/)) && method === 'GET')
      return { status: 200, body: this.issueJson(this.visible(m[1]!), q.get('fields'), q.get('properties')) };
    if ((m = p.match(/^\/rest\/api\/3\/issue\/([^/]+)\/comment$/))) {
      const issue = this.visible(m[1]!);
      if (method === 'GET') return { status: 200, body: this.listComments(issue, q) };
      if (method === 'POST') return this.addComment(issue, body);
    }
    if ((m = p.match(/^\/rest\/api\/3\/issue\/([^/]+)\/properties\/([^/]+)$/)))
      return this.property(this.visible(m[1]!).properties, decodeURIComponent(m[2]!), method, body);
    if ((m = p.match(/^\/rest\/api\/3\/comment\/([^/]+)\/properties\/([^/]+)$/))) {
      const c = this.issues
        .filter((i) => this.can(i.project, 'BROWSE_PROJECTS'))
        .flatMap((i) => i.comments)
        .find((x) => x.id === m![1]);
      if (!c) throw new HttpError(404, { errorMessages: ['Comment not found.'] });
      return this.property(c.properties, decodeURIComponent(m[2]!), method, body);
    }
    throw new HttpError(404, { errorMessages: [`No route ${method} ${p}`] });
  }

  // ---- issues ----

  private createIssue(body: unknown): { status: number; body: unknown } | 'dropped' {
    const b = obj(body);
    const f = obj(b.fields);
    const project = str(obj(f.project).key);
    if (!project || !(project in this.opts.projects)) throw fieldError('project', 'valid project is required');
    if (!this.can(project, 'CREATE_ISSUES'))
      throw new HttpError(403, { errorMessages: ['You do not have permission to create issues in this project.'] });
    const issuetype = str(obj(f.issuetype).name);
    if (!issuetype || !(this.opts.issueTypes ?? ['Task']).includes(issuetype))
      throw fieldError('issuetype', 'Specify a valid issue type');
    const summary = str(f.summary);
    if (!summary) throw fieldError('summary', 'You must specify a summary of the issue.');
    if (summary.length > 255) throw fieldError('summary', 'Summary must be less than 255 characters.');
    if (/[\r\n]/.test(summary)) throw fieldError('summary', "Field can't contain newline characters.");
    if (f.description !== undefined && f.description !== null && adfError(f.description))
      throw fieldError(
        'description',
        'Operation value must be an Atlassian Document (see the Atlassian Document Format)',
      );
    const labels = f.labels === undefined ? [] : f.labels;
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string' || /\s/.test(l) || l.length > 255))
      throw fieldError('labels', 'Labels must be strings without spaces, up to 255 characters.');
    const priority = f.priority === undefined ? 'Medium' : str(obj(f.priority).name);
    if (!priority || !PRIORITIES.includes(priority)) throw fieldError('priority', 'Specify a valid priority');
    let reporter = SERVICE.accountId;
    if (f.reporter !== undefined) {
      if (this.opts.reporterSettable === false)
        throw fieldError(
          'reporter',
          "Field 'reporter' cannot be set. It is not on the appropriate screen, or unknown.",
        );
      const id = str(obj(f.reporter).accountId);
      if (!id || !this.users.some((u) => u.accountId === id)) throw fieldError('reporter', 'Specify a valid reporter');
      reporter = id;
    }
    const props = b.properties === undefined ? [] : b.properties;
    if (!Array.isArray(props)) throw fieldError('properties', 'must be an array');
    const n = (this.counters.get(project) ?? 0) + 1;
    this.counters.set(project, n);
    const now = Date.now();
    const issue: SIssue = {
      id: String(this.nextId++),
      key: `${project}-${n}`,
      project,
      summary,
      description: f.description ?? null,
      issuetype,
      labels: labels as string[],
      priority,
      reporter,
      creator: SERVICE.accountId,
      status: { name: 'To Do', category: 'new' },
      created: now,
      updated: now,
      searchableAt: now + this.indexLagMs,
      properties: new Map(props.map((x) => [str(obj(x).key) ?? '', obj(x).value] as const)),
      comments: [],
    };
    this.issues.push(issue);
    if (this.drops.delete('create')) return 'dropped';
    return { status: 201, body: { id: issue.id, key: issue.key, self: `${this.url}/rest/api/3/issue/${issue.id}` } };
  }

  private issue(key: string): SIssue | undefined {
    const k = decodeURIComponent(key).toUpperCase();
    return this.issues.find((i) => i.key === k || i.id === k);
  }

  /** Jira hides what the account cannot browse behind the same 404 as what does not exist. */
  private visible(key: string): SIssue {
    const i = this.issue(key);
    if (!i || !this.can(i.project, 'BROWSE_PROJECTS')) throw notFound();
    return i;
  }

  private can(project: string, p: Permission): boolean {
    return this.opts.projects[project]?.includes(p) ?? false;
  }

  private issueJson(
    i: SIssue,
    fields: string | string[] | null | undefined,
    properties: string | string[] | null | undefined,
  ) {
    const all: Record<string, unknown> = {
      summary: i.summary,
      description: i.description,
      status: { name: i.status.name, statusCategory: { key: i.status.category } },
      priority: { name: i.priority },
      labels: i.labels,
      reporter: this.userJson(i.reporter),
      creator: this.userJson(i.creator),
      created: jiraDate(i.created),
      updated: jiraDate(i.updated),
      project: { key: i.project },
      issuetype: { name: i.issuetype },
    };
    const want = fields === null || fields === undefined ? undefined : list(fields);
    const props = properties === null || properties === undefined ? [] : list(properties);
    return {
      id: i.id,
      key: i.key,
      self: `${this.url}/rest/api/3/issue/${i.id}`,
      fields: want ? Object.fromEntries(Object.entries(all).filter(([k]) => want.includes(k))) : all,
      ...(props.length
        ? {
            properties: Object.fromEntries(
              props.filter((k) => i.properties.has(k)).map((k) => [k, i.properties.get(k)]),
            ),
          }
        : {}),
    };
  }

  private property(
    props: Map<string, unknown>,
    key: string,
    method: string,
    body: unknown,
  ): { status: number; body: unknown } {
    if (method === 'GET') {
      if (!props.has(key)) throw new HttpError(404, { errorMessages: [`The property '${key}' does not exist.`] });
      return { status: 200, body: { key, value: props.get(key) } };
    }
    if (method === 'PUT') {
      const existed = props.has(key);
      props.set(key, body);
      return { status: existed ? 200 : 201, body: undefined };
    }
    throw new HttpError(405, { errorMessages: ['Method not allowed'] });
  }

  // ---- comments ----

  private listComments(i: SIssue, q: URLSearchParams) {
    const startAt = Number(q.get('startAt') ?? 0);
    const maxResults = Math.min(Number(q.get('maxResults') ?? 50), 100);
    const desc = (q.get('orderBy') ?? '').startsWith('-');
    const withProps = list(q.get('expand') ?? '').includes('properties');
    const sorted = [...i.comments].sort(
      (a, b) => (desc ? -1 : 1) * (a.created - b.created || Number(a.id) - Number(b.id)),
    );
    return {
      startAt,
      maxResults,
      total: sorted.length,
      comments: sorted.slice(startAt, startAt + maxResults).map((c) => this.commentJson(c, withProps)),
    };
  }

  private commentJson(c: SComment, withProps: boolean) {
    return {
      id: c.id,
      author: this.userJson(c.author),
      body: c.body,
      created: jiraDate(c.created),
      updated: jiraDate(c.created),
      ...(withProps ? { properties: [...c.properties].map(([key, value]) => ({ key, value })) } : {}),
    };
  }

  private addComment(i: SIssue, body: unknown): { status: number; body: unknown } | 'dropped' {
    if (!this.can(i.project, 'ADD_COMMENTS'))
      throw new HttpError(403, { errorMessages: ['You do not have the permission to comment on this issue.'] });
    const b = obj(body);
    if (adfError(b.body)) throw fieldError('comment', 'Comment body is not valid!');
    const props = Array.isArray(b.properties) ? b.properties : [];
    const c: SComment = {
      id: String(this.nextId++),
      author: SERVICE.accountId,
      body: b.body,
      created: Date.now(),
      properties: new Map(props.map((x) => [str(obj(x).key) ?? '', obj(x).value] as const)),
    };
    i.comments.push(c);
    i.updated = c.created;
    if (this.drops.delete('comment')) return 'dropped';
    return { status: 201, body: this.commentJson(c, false) };
  }

  // ---- users, permissions ----

  private userJson(accountId: string) {
    const u = this.users.find((x) => x.accountId === accountId);
    if (!u) return null;
    return {
      accountId: u.accountId,
      accountType: 'atlassian',
      displayName: u.displayName,
      active: u.active ?? true,
      ...(u.hideEmail ? {} : { emailAddress: u.email }),
    };
  }

  private userSearch(query: string) {
    const q = query.toLowerCase();
    if (!q) return [];
    return this.users
      .filter((u) => u.email.toLowerCase().startsWith(q) || u.displayName.toLowerCase().startsWith(q))
      .map((u) => this.userJson(u.accountId));
  }

  private myPermissions(q: URLSearchParams): { status: number; body: unknown } {
    const project = q.get('projectKey');
    const wanted = list(q.get('permissions') ?? '');
    if (!wanted.length) throw new HttpError(400, { errorMessages: ['The permissions parameter is required.'] });
    if (project && !(project in this.opts.projects))
      throw new HttpError(404, { errorMessages: [`No project could be found with key '${project}'.`] });
    const have = (p: string) => (project ? this.can(project, p as Permission) : false);
    return {
      status: 200,
      body: { permissions: Object.fromEntries(wanted.map((p) => [p, { key: p, havePermission: have(p) }])) },
    };
  }

  // ---- search ----

  private search(body: unknown) {
    const b = obj(body);
    const jql = str(b.jql) ?? '';
    this.jqls.push(jql);
    const { where, order } = parseJql(jql);
    if (!where.length)
      throw new HttpError(400, {
        errorMessages: ['Unbounded JQL queries are not allowed here. Please add a search restriction to your query.'],
      });
    const now = Date.now();
    const hits = this.issues.filter(
      (i) => i.searchableAt <= now && this.can(i.project, 'BROWSE_PROJECTS') && where.every((c) => this.matches(i, c)),
    );
    if (order) {
      const dir = order.desc ? -1 : 1;
      hits.sort(
        (a, z) =>
          dir *
          (order.field === 'key' ? Number(a.id) - Number(z.id) : a.created - z.created || Number(a.id) - Number(z.id)),
      );
    }
    const offset = b.nextPageToken === undefined ? 0 : decodeToken(b.nextPageToken);
    const max = Math.min(typeof b.maxResults === 'number' ? b.maxResults : 50, this.opts.pageSize ?? 100);
    const page = hits.slice(offset, offset + max);
    const more = offset + max < hits.length;
    const fields = Array.isArray(b.fields) ? (b.fields as string[]) : undefined;
    const properties = Array.isArray(b.properties) ? (b.properties as string[]) : [];
    return {
      issues: page.map((i) => {
        const j = this.issueJson(i, fields ?? [], properties);
        return fields ? j : { id: j.id };
      }),
      ...(more ? { nextPageToken: Buffer.from(JSON.stringify({ o: offset + max })).toString('base64url') } : {}),
      isLast: !more,
    };
  }

  private matches(i: SIssue, c: Clause): boolean {
    switch (c.field) {
      case 'project':
        return c.values.some((v) => v.toUpperCase() === i.project);
      case 'labels':
        return c.values.some((v) => i.labels.includes(v));
      case 'status':
        return c.values.some((v) => v.toLowerCase() === i.status.name.toLowerCase());
      case 'statuscategory':
        return c.values.some((v) => CATEGORY_NAMES[v.toLowerCase()] === i.status.category);
      case 'text': {
        const hay = [i.summary, adfText(i.description), ...i.comments.map((x) => adfText(x.body))]
          .join(' ')
          .toLowerCase();
        return c.values[0]!.toLowerCase()
          .split(/\s+/)
          .filter(Boolean)
          .every((t) => hay.includes(t));
      }
      default:
        return false;
    }
  }
}

// ---- JQL (the subset) ----

interface Clause {
  field: string;
  values: string[];
}

function tokenize(jql: string): { t: 'str' | 'word' | 'op'; v: string }[] {
  const out: { t: 'str' | 'word' | 'op'; v: string }[] = [];
  let i = 0;
  const bad = (why: string) => new HttpError(400, { errorMessages: [`Error in the JQL Query: ${why} (at ${i}).`] });
  while (i < jql.length) {
    const ch = jql[i]!;
    if (/\s/.test(ch)) i++;
    else if (ch === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= jql.length) throw bad('unterminated string');
        const c = jql[i++]!;
        if (c === '"') break;
        if (c === '\\') {
          const e = jql[i++];
          if (e === undefined) throw bad('dangling escape');
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        } else if (c === '\n') throw bad('newline in a string');
        else v += c;
      }
      out.push({ t: 'str', v });
    } else if ('(),'.includes(ch)) {
      out.push({ t: 'op', v: ch });
      i++;
    } else if (ch === '!' && jql[i + 1] === '=') {
      out.push({ t: 'op', v: '!=' });
      i += 2;
    } else if (ch === '=' || ch === '~') {
      out.push({ t: 'op', v: ch });
      i++;
    } else {
      const m = /^[A-Za-z0-9_.-]+/.exec(jql.slice(i));
      if (!m) throw bad(`unexpected character '${ch}'`);
      out.push({ t: 'word', v: m[0] });
      i += m[0].length;
    }
  }
  return out;
}

export function parseJql(jql: string): { where: Clause[]; order?: { field: string; desc: boolean } } {
  const toks = tokenize(jql);
  let k = 0;
  const bad = (why: string) => new HttpError(400, { errorMessages: [`Error in the JQL Query: ${why}.`] });
  const peekWord = (w: string) => toks[k]?.t === 'word' && toks[k]!.v.toLowerCase() === w;
  const value = (): string => {
    const t = toks[k++];
    if (!t || t.t === 'op') throw bad('expected a value');
    return t.v;
  };
  const where: Clause[] = [];
  let order: { field: string; desc: boolean } | undefined;
  while (k < toks.length) {
    if (peekWord('order')) {
      k++;
      if (!peekWord('by')) throw bad("expected 'by'");
      k++;
      const field = value().toLowerCase();
      if (field !== 'created' && field !== 'key') throw bad(`cannot order by ${field}`);
      const desc = peekWord('desc');
      if (desc || peekWord('asc')) k++;
      order = { field, desc };
      if (k < toks.length) throw bad('unexpected text after ORDER BY');
      break;
    }
    if (where.length) {
      if (!peekWord('and')) throw bad(`only AND is supported here, got '${toks[k]?.v}'`);
      k++;
    }
    const fieldTok = toks[k++];
    if (!fieldTok || fieldTok.t !== 'word') throw bad('expected a field');
    const field = fieldTok.v.toLowerCase();
    if (!['project', 'labels', 'text', 'status', 'statuscategory'].includes(field))
      throw new HttpError(400, {
        errorMessages: [`Field '${fieldTok.v}' does not exist or you do not have permission to view it.`],
      });
    const op = toks[k];
    if (peekWord('in')) {
      k++;
      if (toks[k++]?.v !== '(') throw bad("expected '('");
      const values = [value()];
      while (toks[k]?.v === ',') {
        k++;
        values.push(value());
      }
      if (toks[k++]?.v !== ')') throw bad("expected ')'");
      where.push({ field, values });
    } else if (op?.t === 'op' && (op.v === '=' || op.v === '~')) {
      k++;
      if ((field === 'text') !== (op.v === '~')) throw bad(`operator '${op.v}' is not supported for ${field}`);
      where.push({ field, values: [value()] });
    } else throw bad(`unsupported operator after ${field}`);
  }
  return order ? { where, order } : { where };
}

// ---- ADF ----

const BLOCKS = new Set([
  'paragraph',
  'heading',
  'bulletList',
  'orderedList',
  'codeBlock',
  'blockquote',
  'rule',
  'panel',
  'table',
  'mediaSingle',
  'expand',
]);
const INLINES = new Set(['text', 'hardBreak', 'mention', 'emoji', 'inlineCard', 'date', 'status']);

/** Why a value is not a valid ADF document, or undefined when it is. */
export function adfError(doc: unknown): string | undefined {
  const d = doc as { type?: unknown; version?: unknown; content?: unknown } | null;
  if (typeof d !== 'object' || d === null) return 'not an object';
  if (d.type !== 'doc' || d.version !== 1) return 'root must be {type: doc, version: 1}';
  if (!Array.isArray(d.content)) return 'doc.content must be an array';
  for (const n of d.content) {
    const e = blockError(n, 0);
    if (e) return e;
  }
  return undefined;
}

function blockError(n: unknown, depth: number): string | undefined {
  if (depth > 30) return 'too deep';
  const x = n as { type?: unknown; content?: unknown } | null;
  if (typeof x !== 'object' || x === null || typeof x.type !== 'string') return 'node without a type';
  if (x.content !== undefined && !Array.isArray(x.content)) return `${x.type}.content must be an array`;
  const kids = (x.content ?? []) as unknown[];
  switch (x.type) {
    case 'paragraph':
    case 'heading':
    case 'codeBlock':
      for (const k of kids) {
        const e = inlineError(k);
        if (e) return e;
      }
      return undefined;
    case 'bulletList':
    case 'orderedList':
      for (const li of kids) {
        const l = li as { type?: unknown; content?: unknown };
        if (l?.type !== 'listItem' || !Array.isArray(l.content)) return 'lists hold listItem nodes';
        for (const b of l.content) {
          const e = blockError(b, depth + 1);
          if (e) return e;
        }
      }
      return undefined;
    default:
      if (!BLOCKS.has(x.type)) return `unknown block node ${x.type}`;
      for (const k of kids) {
        const e = INLINES.has((k as { type?: string })?.type ?? '') ? inlineError(k) : blockError(k, depth + 1);
        if (e) return e;
      }
      return undefined;
  }
}

function inlineError(n: unknown): string | undefined {
  const x = n as { type?: unknown; text?: unknown } | null;
  if (typeof x !== 'object' || x === null || typeof x.type !== 'string' || !INLINES.has(x.type))
    return 'paragraphs hold inline nodes';
  if (x.type === 'text' && (typeof x.text !== 'string' || x.text === '')) return 'text nodes need non-empty text';
  return undefined;
}

function adfText(n: unknown): string {
  const x = n as { text?: unknown; content?: unknown } | null;
  if (typeof x !== 'object' || x === null) return '';
  return [typeof x.text === 'string' ? x.text : '', ...(Array.isArray(x.content) ? x.content.map(adfText) : [])].join(
    ' ',
  );
}

// ---- small helpers ----

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function list(v: string | string[]): string[] {
  return (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean);
}
function decodeToken(t: unknown): number {
  try {
    const o = JSON.parse(Buffer.from(String(t), 'base64url').toString()) as { o?: unknown };
    if (typeof o.o === 'number') return o.o;
  } catch {
    /* fall through */
  }
  throw new HttpError(400, { errorMessages: ['The nextPageToken is invalid.'] });
}
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}
