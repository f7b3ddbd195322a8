import { z } from 'zod';
import { GuardError } from '../../core/errors.js';
import { defineTool } from '../../core/tool.js';
import { neutralise, untrusted, untrustedText } from '../untrusted.js';

const READ = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;

export const kbSearch = defineTool({
  name: 'kb_search',
  title: 'Search the IT knowledge base',
  description:
    'Full-text search of IT-support articles (VPN, MFA, printers, Wi-Fi, email, laptops, policies). Returns the best matches first with a highlighted snippet; read one with kb_get_article.',
  input: {
    query: z.string().trim().min(1).max(500).describe('What the user is asking about, in plain words.'),
    limit: z.int().min(1).max(20).default(5).describe('How many articles to return (1..20).'),
  },
  scope: 'kb:read',
  effect: 'read',
  tier: 'auto',
  annotations: READ,
  output: {
    results: z.array(
      z.object({
        id: z.string(),
        title: untrustedText(),
        category: untrustedText(),
        snippet: untrustedText(),
        score: z.number().describe('Relevance within this result list: 0 or more, higher is better.'),
      }),
    ),
  },
  summary: (a) => `Search the knowledge base for "${a.query}"`,
  async run(a, ctx) {
    const hits = await ctx.backends.kb.search(a.query, a.limit, { signal: ctx.signal });
    if (!hits.length) return { text: `No articles match "${a.query}". Try other words.`, data: { results: [] } };
    const lines = hits.map((h, i) => `${i + 1}. ${h.id} — ${h.title} [${h.category}]\n   ${h.snippet.replace(/\s+/g, ' ')}`);
    return {
      text: `${hits.length} article(s) for "${a.query}", best first ([[…]] marks matched words):\n${untrusted('kb_search snippets', lines.join('\n'))}`,
      data: { results: hits.map((h) => ({ id: h.id, title: neutralise(h.title), category: neutralise(h.category), snippet: neutralise(h.snippet), score: Math.max(0, h.score) })) },
    };
  },
});

export const kbGetArticle = defineTool({
  name: 'kb_get_article',
  title: 'Read a knowledge-base article',
  description: 'Returns one knowledge-base article by id (e.g. KB-1001), as found by kb_search.',
  input: { id: z.string().regex(/^[A-Za-z]+-\d{1,8}$/, { error: 'must be an article id like KB-1001' }).describe('Article id, e.g. KB-1001.') },
  scope: 'kb:read',
  effect: 'read',
  tier: 'auto',
  annotations: READ,
  output: {
    id: z.string(),
    title: untrustedText(),
    category: untrustedText(),
    tags: z.array(untrustedText()),
    updated: untrustedText(),
    body: untrustedText(),
  },
  summary: (a) => `Read article ${a.id}`,
  async run(a, ctx) {
    const art = await ctx.backends.kb.get(a.id, { signal: ctx.signal });
    if (!art) throw new GuardError('NOT_FOUND', `No article ${a.id}.`, { next: 'Search with kb_search and use an id it returns.' });
    // Title, category and tags are written by people too: inside the fence with the body.
    return {
      text: `Article ${a.id}:\n${untrusted(`kb article ${a.id}`, `Title: ${art.title}\nCategory: ${art.category}\nTags: ${art.tags.join(', ')}\nUpdated: ${art.updated}\n\n${art.body}`)}`,
      data: { id: art.id, title: neutralise(art.title), category: neutralise(art.category), tags: art.tags.map(neutralise), updated: neutralise(art.updated), body: neutralise(art.body) },
    };
  },
});
