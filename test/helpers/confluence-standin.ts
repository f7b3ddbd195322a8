/**
 * A loopback stand-in for Confluence Cloud REST v1 under `/wiki` (the parts the KB adapter uses), following the
 * documented shapes: Basic auth with e-mail + API token (401), spaces the account may or may not view (404 when it
 * may not), CQL search (`/wiki/rest/api/search?cql=&limit=&cursor=`) with `results[].content`, `excerpt` highlights
 * (`@@@hl@@@`) and cursor paging through `_links.next` (relative to `_links.base`), pages with storage-format bodies,
 * labels and versions (`/wiki/rest/api/content/{id}`), and 429 + Retry-After via `failNext`.
 *
 * The CQL understood is exactly the shape the adapter writes — `space in ("A","B") AND type = page AND text ~ "…"`
 * with `\"` and `\\` escapes — and anything else is a 400 "Could not parse cql", so a query that would leave its
 * string literal fails loudly here. `leak: true` makes search return pages of every space (a misbehaving server),
 * so the adapter's own check on the answer is tested too.
 */
import { StandinServer, type Reply, type Seen } from './standin-server.js';

export interface ConfluencePage {
  id: string;
  space: string;
  title: string;
  body: string;
  labels?: string[];
  when?: string;
}

const CQL = /^space in \(((?:"(?:[^"\\]|\\.)*",?)+)\) AND type = page AND text ~ "((?:[^"\\]|\\.)*)"$/;
const unescape = (s: string) => s.replace(/\\(.)/g, '$1');

export class ConfluenceStandin extends StandinServer {
  readonly cqls: string[] = [];
  leak = false;
  pageSize = 25;

  constructor(
    readonly email: string,
    readonly token: string,
    readonly spaces: Record<string, { name: string; visible: boolean }>,
    readonly pages: ConfluencePage[],
  ) {
    super();
  }

  static async start(
    email: string,
    token: string,
    spaces: ConfluenceStandin['spaces'],
    pages: ConfluencePage[],
  ): Promise<ConfluenceStandin> {
    return new ConfluenceStandin(email, token, spaces, pages).listen();
  }

  private visible(key: string): boolean {
    return this.spaces[key]?.visible === true;
  }

  protected handle(s: Seen): Reply {
    const basic = `Basic ${Buffer.from(`${this.email}:${this.token}`).toString('base64')}`;
    if (s.authorization !== basic)
      return {
        status: 401,
        body: { statusCode: 401, message: 'Client must be authenticated to access this resource.' },
      };
    const p = s.path.split('/').filter(Boolean); // wiki rest api …
    if (p[0] !== 'wiki' || p[1] !== 'rest' || p[2] !== 'api')
      return { status: 404, body: { statusCode: 404, message: 'Not found' } };
    if (p[3] === 'space' && p[4]) {
      if (!this.visible(p[4]))
        return { status: 404, body: { statusCode: 404, message: `No space with key : ${p[4]}` } };
      return { status: 200, body: { key: p[4], name: this.spaces[p[4]]!.name, type: 'global' } };
    }
    if (p[3] === 'content' && p[4]) {
      const page = this.pages.find((x) => x.id === p[4]);
      if (!page || !this.visible(page.space))
        return { status: 404, body: { statusCode: 404, message: `No content found with id : ContentId{id=${p[4]}}` } };
      return { status: 200, body: this.pageJson(page) };
    }
    if (p[3] === 'search' && s.method === 'GET') return this.search(s);
    return { status: 404, body: { statusCode: 404, message: 'Not found' } };
  }

  private pageJson(page: ConfluencePage) {
    return {
      id: page.id,
      type: 'page',
      status: 'current',
      title: page.title,
      space: { key: page.space, name: this.spaces[page.space]?.name ?? page.space },
      body: { storage: { value: page.body, representation: 'storage' } },
      version: { when: page.when ?? '2026-11-02T09:00:00.000Z', number: 3 },
      metadata: { labels: { results: (page.labels ?? []).map((name) => ({ prefix: 'global', name })) } },
    };
  }

  private search(s: Seen): Reply {
    const cql = s.query.get('cql') ?? '';
    this.cqls.push(cql);
    const m = CQL.exec(cql);
    if (!m) return { status: 400, body: { statusCode: 400, message: `Could not parse cql : ${cql}` } };
    const spaces = [...m[1]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => unescape(x[1]!));
    const words = unescape(m[2]!).toLowerCase().split(/\s+/).filter(Boolean);
    const scored = this.pages
      .filter((x) => (this.leak || spaces.includes(x.space)) && this.visible(x.space))
      .map((x) => ({ x, n: words.filter((w) => `${x.title} ${x.body}`.toLowerCase().includes(w)).length }))
      .filter((h) => h.n > 0)
      .sort((a, b) => b.n - a.n);
    const limit = Math.min(Number(s.query.get('limit') ?? 25), this.pageSize);
    const start = Number(Buffer.from(s.query.get('cursor') ?? '', 'base64url').toString() || 0);
    const slice = scored.slice(start, start + limit);
    const next = start + limit < scored.length;
    const q = new URLSearchParams({
      cql,
      limit: String(limit),
      cursor: Buffer.from(String(start + limit)).toString('base64url'),
    });
    return {
      status: 200,
      body: {
        results: slice.map(({ x, n }) => ({
          content: { id: x.id, type: 'page', status: 'current', title: x.title, space: { key: x.space } },
          title: x.title,
          excerpt: highlight(x.body.replace(/<[^>]+>/g, ' ').slice(0, 200), words),
          url: `/spaces/${x.space}/pages/${x.id}`,
          entityType: 'content',
          lastModified: x.when ?? '2026-11-02T09:00:00.000Z',
          score: n,
        })),
        start,
        limit,
        size: slice.length,
        totalSize: scored.length,
        _links: {
          base: `${this.url}/wiki`,
          context: '/wiki',
          ...(next ? { next: `/rest/api/search?${q.toString()}` } : {}),
        },
      },
    };
  }
}

const highlight = (text: string, words: string[]) =>
  words.reduce(
    (t, w) => t.replace(new RegExp(`(${w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})`, 'gi'), '@@@hl@@@$1@@@endhl@@@'),
    text,
  );
