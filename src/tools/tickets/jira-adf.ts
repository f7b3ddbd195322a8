/**
 * Atlassian Document Format (ADF) for the Jira adapter: plain text in, plain text out.
 *
 * Writing: every line of the plain text becomes one paragraph (an empty line an empty paragraph), so that
 * `textFromAdf(adfFromText(s)) === s` for any text itguard writes. Nothing else is generated: no marks, no links
 * turned into cards, so what Jira shows is what the agent wrote.
 *
 * Reading: people write rich ADF in Jira. `textFromAdf` flattens it to readable text: paragraphs and headings as
 * lines, hardBreak as a newline, bullet and ordered lists as `- ` / `1. ` lines (nested lists indented), code
 * blocks fenced with ```, quotes prefixed `> `, tables as `a | b` rows, mentions, emoji, dates, status lozenges
 * and inline cards by their text. Unknown nodes contribute their children's text, so new node types degrade to
 * their words rather than vanish. Depth is bounded: a hostile, deeply nested document cannot blow the stack.
 */
import { z } from 'zod';

export interface AdfNode {
  type: string;
  text?: string | undefined;
  attrs?: Record<string, unknown> | undefined;
  marks?: unknown[] | undefined;
  content?: AdfNode[] | undefined;
}
export interface AdfDoc extends AdfNode {
  type: 'doc';
  version: 1;
  content: AdfNode[];
}

export const AdfNodeSchema: z.ZodType<AdfNode> = z.lazy(() =>
  z.object({
    type: z.string(),
    text: z.string().optional(),
    attrs: z.record(z.string(), z.unknown()).optional(),
    marks: z.array(z.unknown()).optional(),
    content: z.array(AdfNodeSchema).optional(),
  }),
);

/** Plain text → an ADF document: one paragraph per line. */
export function adfFromText(text: string): AdfDoc {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  return {
    type: 'doc',
    version: 1,
    content: lines.map((line) => ({
      type: 'paragraph',
      content: line ? [{ type: 'text', text: line }] : [],
    })),
  };
}

const MAX_DEPTH = 64;

/** An ADF document (or null, as Jira sends for an empty description) → plain text. */
export function textFromAdf(doc: AdfNode | null | undefined): string {
  if (!doc) return '';
  return blocks(doc.content ?? [], 0).join('\n');
}

/** Block nodes → lines. */
function blocks(nodes: readonly AdfNode[], depth: number): string[] {
  if (depth > MAX_DEPTH) return [];
  return nodes.flatMap((n) => block(n, depth + 1));
}

function block(n: AdfNode, depth: number): string[] {
  const kids = n.content ?? [];
  switch (n.type) {
    case 'paragraph':
    case 'heading':
      return inline(kids, depth).split('\n');
    case 'bulletList':
      return kids.flatMap((li) => listItem(li, '- ', depth));
    case 'orderedList': {
      const start = typeof n.attrs?.order === 'number' ? n.attrs.order : 1;
      return kids.flatMap((li, i) => listItem(li, `${start + i}. `, depth));
    }
    case 'taskList':
      return kids.flatMap((li) => listItem(li, li.attrs?.state === 'DONE' ? '[x] ' : '[ ] ', depth));
    case 'decisionList':
      return kids.flatMap((li) => listItem(li, '* ', depth));
    case 'codeBlock':
      return ['```', ...inline(kids, depth).split('\n'), '```'];
    case 'blockquote':
      return blocks(kids, depth).map((l) => `> ${l}`);
    case 'rule':
      return ['---'];
    case 'table':
      return kids.map((row) =>
        (row.content ?? []).map((cell) => blocks(cell.content ?? [], depth).join(' ')).join(' | '),
      );
    case 'media':
    case 'mediaInline':
      return ['[attachment]'];
    case 'text':
    case 'hardBreak':
    case 'mention':
    case 'emoji':
    case 'inlineCard':
    case 'date':
    case 'status':
      return inline([n], depth).split('\n');
    default:
      // panel, expand, layoutSection, mediaSingle, ... and node types not invented yet: their children's text.
      return blocks(kids, depth);
  }
}

/** A list item's blocks, the first line after the marker and the rest indented under it. */
function listItem(li: AdfNode, marker: string, depth: number): string[] {
  const inner =
    li.type === 'taskItem' || li.type === 'decisionItem'
      ? inline(li.content ?? [], depth).split('\n')
      : blocks(li.content ?? [], depth);
  const pad = ' '.repeat(marker.length);
  return inner.length ? inner.map((l, i) => (i === 0 ? marker : pad) + l) : [marker.trimEnd()];
}

/** Inline nodes → text (hardBreak = newline). */
function inline(nodes: readonly AdfNode[], depth: number): string {
  if (depth > MAX_DEPTH) return '';
  return nodes
    .map((n) => {
      const a = n.attrs ?? {};
      switch (n.type) {
        case 'text':
          return n.text ?? '';
        case 'hardBreak':
          return '\n';
        case 'mention':
          return str(a.text) ?? '@someone';
        case 'emoji':
          return str(a.text) ?? str(a.shortName) ?? '';
        case 'inlineCard':
          return str(a.url) ?? '';
        case 'status':
          return str(a.text) ?? '';
        case 'date': {
          const ms = Number(a.timestamp);
          return Number.isFinite(ms) ? new Date(ms).toISOString().slice(0, 10) : '';
        }
        default:
          return inline(n.content ?? [], depth + 1);
      }
    })
    .join('');
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
