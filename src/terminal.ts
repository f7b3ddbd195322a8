/**
 * Text for the operator's terminal. The CLI prints text that agents, users and older data wrote (reasons,
 * summaries, tool names, outbox messages); a terminal acts on control characters in it — ESC sequences can
 * clear the screen, recolour, retitle or move the cursor, CR overwrites a line, bidi overrides reorder what is
 * shown. Every such character is printed as a visible escape instead, so what the operator reads is what is stored.
 */

/**
 * C0 controls (except tab, and newline unless single-line), DEL, C1 controls (U+0080–U+009F, U+009B is CSI),
 * bidi marks, embeddings, overrides and isolates, and the Unicode line and paragraph separators.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, newlines kept: for blocks printed as several lines. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_ML = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same characters that are not already escaped by JSON.stringify (it escapes C0 only). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number): string => c.charCodeAt(0).toString(16).padStart(width, '0');
const visible = (c: string): string => {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  const code = c.charCodeAt(0);
  return code < 0x80 ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`;
};

/**
 * `s` with every character a terminal could act on shown as an escape (`\x1b`, `\r`, `\u009b`, `\u202e`).
 * Single-line by default, for table cells and one-line records: a newline becomes `\n`, so agent text cannot
 * fake a row. `multiline` keeps newlines, for blocks printed as such. Tabs are kept. Backslashes are not
 * doubled (paths stay readable), so a literal `\x1b` typed by someone looks like an escaped one: harmless, as
 * neither reaches the terminal as a control. The result is printable and `safeText` of it is itself.
 */
export function safeText(s: string, opts: { multiline?: boolean } = {}): string {
  return s.replace(opts.multiline ? UNSAFE_ML : UNSAFE, visible);
}

/**
 * JSON for a terminal or a pipe: `JSON.stringify` escapes C0 controls but leaves DEL, C1 controls and bidi
 * overrides raw; those become `\uXXXX` escapes here. Still valid JSON that parses to the same value.
 */
export function safeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(UNSAFE_IN_JSON, (c) => `\\u${hex(c, 4)}`);
}
