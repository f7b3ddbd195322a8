/**
 * The Confluence Cloud KB adapter (`kb: { kind: confluence, base_url, email_env, token_env, spaces }`): CQL search
 * (`GET {base}/rest/api/search`, v1: CQL exists only there) and page fetch (`GET {base}/rest/api/content/{id}`),
 * Basic auth (e-mail + API token), cursor paging through `_links.next`, 429 with `Retry-After` honoured.
 *
 * Security: every query is confined to the configured spaces whatever the agent typed. The agent's words become
 * one CQL string literal (`text ~ "…"`): Lucene operators are dropped and `\` and `"` escaped, so nothing can leave
 * the literal; the space restriction is a separate clause ANDed outside it; and every hit and fetched page is
 * checked against the spaces again (a page moved out of a space reads as absent). Results are the same shape as
 * the embedded KB's; the tools fence the text as untrusted.
 *
 * Article ids: `CONF-<page id>` when it has at most 8 digits; longer page ids carry their leading digits as
 * letters (a=0 … j=9) after `CONF`, e.g. page 3342337121 → `CONFdd-42337121`, to fit kb_get_article's id rule.
 */
import { CloudHttp, clip, deadline, obj, retryAfterMs, str, type CloudRequest } from '../cloud-http.js';
import { BackendError, type CallOpts, type ProbeReport } from '../../core/backend.js';
import type { Article, KbHit, KbPort } from '../../core/ports/kb.js';

export interface ConfluenceConfig {
  /** https://example.atlassian.net/wiki */
  baseUrl: string;
  email: string;
  apiToken: string;
  spaces: readonly string[];
  timeoutMs?: number;
  maxRetries?: number;
  retryBaseMs?: number;
  fetch?: typeof fetch;
}

/** Lucene/CQL text operators: dropped from the agent's words so they are only words. */
const OPERATORS = /[+\-&|!(){}[\]^"~*?:\\/]/g;

/** The agent's words as a CQL string literal: quoted, operators dropped, `\` and `"` escaped. */
export function cqlLiteral(text: string): string {
  const words = text.replace(OPERATORS, ' ').replace(/\s+/g, ' ').trim();
  return `"${words.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The whole CQL: the space restriction first, ANDed with the text clause. */
export function confinedCql(spaces: readonly string[], query: string): string {
  return `space in (${spaces.map((s) => cqlLiteral(s)).join(',')}) AND type = page AND text ~ ${cqlLiteral(query)}`;
}

export function articleId(pageId: string): string {
  const high = pageId.slice(0, -8);
  return `CONF${[...high].map((d) => String.fromCharCode(97 + Number(d))).join('')}-${pageId.slice(-8)}`;
}

export function pageIdOf(id: string): string | undefined {
  const m = /^CONF([a-j]*)-(\d{1,8})$/.exec(id);
  if (!m) return undefined;
  return [...m[1]!].map((c) => String(c.charCodeAt(0) - 97)).join('') + m[2]!;
}

/** Confluence storage format (XHTML) → readable text: block ends become newlines, tags dropped, entities decoded. */
export function storageToText(xhtml: string): string {
  return xhtml
    .replace(/<(br|\/p|\/h[1-6]|\/li|\/tr|\/pre|\/blockquote)[^>]*>/gi, '\n')
    .replace(/<li[^>]*>/gi, '- ')
    .replace(/<[^>]+>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#(\d+);/g, (_m, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Search excerpts mark matches with @@@hl@@@ … @@@endhl@@@; the embedded KB marks them [[…]]. */
const excerptText = (s: string): string =>
  storageToText(s.replace(/@@@hl@@@/g, '[[').replace(/@@@endhl@@@/g, ']]')).replace(/\s+/g, ' ');

export class ConfluenceKb implements KbPort {
  readonly kind = 'confluence';
  private readonly http: CloudHttp;
  private readonly base: URL;
  constructor(private readonly cfg: ConfluenceConfig) {
    this.base = new URL(cfg.baseUrl.endsWith('/') ? cfg.baseUrl : `${cfg.baseUrl}/`);
    const auth = `Basic ${Buffer.from(`${cfg.email}:${cfg.apiToken}`).toString('base64')}`;
    this.http = new CloudHttp({
      vendor: 'Confluence',
      baseUrl: this.base,
      auth: async () => auth,
      ...(cfg.maxRetries !== undefined ? { maxRetries: cfg.maxRetries } : {}),
      ...(cfg.retryBaseMs !== undefined ? { retryBaseMs: cfg.retryBaseMs } : {}),
      ...(cfg.fetch ? { fetch: cfg.fetch } : {}),
      rateWait: (res) => retryAfterMs(res.headers.get('retry-after')),
      said: (res) => clip(str(obj(res.body).message) ?? '', 200),
    });
  }

  private async call(req: CloudRequest, o: CallOpts, missingOk = false) {
    const res = await this.http.send(req, deadline(o.signal, this.cfg.timeoutMs ?? 15_000));
    if (res.status === 200) return obj(res.body);
    if (missingOk && (res.status === 404 || res.status === 403)) return undefined;
    throw failure(res.status, obj(res.body), req.what);
  }

  private inSpaces(key: string | undefined): boolean {
    return !!key && this.cfg.spaces.includes(key);
  }

  async search(query: string, limit: number, o: CallOpts): Promise<KbHit[]> {
    const hits: KbHit[] = [];
    if (cqlLiteral(query) === '""') return hits; // only operators: nothing to search for
    const what = 'searching the knowledge base';
    let req: CloudRequest | undefined = {
      method: 'GET',
      path: 'rest/api/search',
      query: { cql: confinedCql(this.cfg.spaces, query), limit, excerpt: 'highlight', expand: 'content.space' },
      what,
    };
    for (let page = 0; req && hits.length < limit && page < 5; page++) {
      const b = await this.call(req, o);
      const results = Array.isArray(b!.results) ? (b!.results as unknown[]) : [];
      for (const r of results.map(obj)) {
        const c = obj(r.content);
        const space = str(obj(c.space).key);
        const id = str(c.id);
        // Security: confinement is checked on the answer too, not only asked for in the query.
        if (!id || !/^\d{1,16}$/.test(id) || str(c.type) !== 'page' || !this.inSpaces(space)) continue;
        hits.push({
          id: articleId(id),
          title: str(r.title) ?? str(c.title) ?? '',
          category: space!,
          snippet: clip(excerptText(str(r.excerpt) ?? ''), 400),
          score: typeof r.score === 'number' ? r.score : results.length - hits.length,
        });
        if (hits.length >= limit) break;
      }
      const next = str(obj(b!._links).next);
      // The cursor link comes back relative to the site's /wiki base; it stays on the configured origin.
      req = next && results.length ? { method: 'GET', path: new URL(next.replace(/^\//, ''), this.base).href, what } : undefined;
    }
    return hits;
  }

  async get(id: string, o: CallOpts): Promise<Article | undefined> {
    const pageId = pageIdOf(id);
    if (!pageId) return undefined;
    const b = await this.call(
      {
        method: 'GET',
        path: `rest/api/content/${pageId}`,
        query: { expand: 'body.storage,space,version,metadata.labels' },
        what: `reading page ${id}`,
      },
      o,
      true,
    );
    const space = str(obj(b?.space).key);
    // Security: a page outside the configured spaces does not exist, as far as the agent can tell.
    if (!b || str(b.type) !== 'page' || !this.inSpaces(space)) return undefined;
    const labels = obj(obj(b.metadata).labels).results;
    return {
      id,
      title: str(b.title) ?? '',
      category: space!,
      tags: (Array.isArray(labels) ? labels : []).map((l) => str(obj(l).name) ?? '').filter(Boolean),
      body: storageToText(str(obj(obj(b.body).storage).value) ?? ''),
      updated: str(obj(b.version).when) ?? '',
    };
  }

  async probe(o: CallOpts): Promise<ProbeReport> {
    const checks: ProbeReport['checks'] = [];
    for (const key of this.cfg.spaces) {
      try {
        const s = await this.call({ method: 'GET', path: `rest/api/space/${encodeURIComponent(key)}`, what: `reading space ${key}` }, o, true);
        checks.push(
          s
            ? { name: `space ${key} (View)`, ok: true, detail: str(s.name) ?? key }
            : { name: `space ${key} (View)`, ok: false, detail: 'not found or not visible to this account: grant it View on the space' },
        );
      } catch (e) {
        checks.push({ name: `space ${key} (View)`, ok: false, detail: e instanceof Error ? e.message : String(e) });
        break;
      }
    }
    if (checks.every((c) => c.ok)) {
      try {
        await this.call({ method: 'GET', path: 'rest/api/search', query: { cql: confinedCql(this.cfg.spaces, 'password'), limit: 1 }, what: 'searching' }, o);
        checks.push({ name: 'CQL search', ok: true });
      } catch (e) {
        checks.push({ name: 'CQL search', ok: false, detail: e instanceof Error ? e.message : String(e) });
      }
    }
    return { backend: 'kb:confluence', target: this.base.href, ok: checks.every((c) => c.ok), checks };
  }
}

function failure(status: number, body: Record<string, unknown>, what: string): BackendError {
  const said = clip(str(body.message) ?? str(obj(body.data).authorized === false ? 'not authorized' : undefined) ?? '');
  const tail = said ? ` (${said})` : '';
  if (status === 401)
    return new BackendError(`Confluence rejected the credentials (401) while ${what}; check the e-mail and API token variables.`, false, { status, reason: 'auth' });
  if (status === 403)
    return new BackendError(`Confluence denied permission (403) while ${what}${tail}.`, false, { status, reason: 'permission' });
  if (status === 400) return new BackendError(`Confluence refused the query (400) while ${what}${tail}.`, false, { status });
  return new BackendError(`Confluence answered ${status} while ${what}${tail}.`, status >= 500, { status });
}
