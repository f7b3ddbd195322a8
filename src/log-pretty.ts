/**
 * Human-readable log lines for a terminal. pino-pretty (pino's own pretty transport) is not a dependency of
 * itguard, so this is a small pino destination instead: it receives each JSON line pino writes, already redacted,
 * and prints `12:03:04.567 INFO  message  key=value ...` to file descriptor 2. It never runs when stderr is a
 * file or a pipe: logs stay JSON lines there, for collectors (src/log.ts decides).
 */
import { writeSync } from 'node:fs';
import { safeText } from './terminal.js';

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '90'],
  20: ['DEBUG', '36'],
  30: ['INFO ', '32'],
  40: ['WARN ', '33'],
  50: ['ERROR', '31'],
  60: ['FATAL', '35'],
};
/** Fields every line has, shown in the line's head rather than as key=value. */
const HEAD = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name']);

const paint = (color: boolean, code: string, s: string): string => (color ? `\u001b[${code}m${s}\u001b[0m` : s);

const value = (v: unknown): string => {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  // Security: logged values may carry agent or user text; escaped so it cannot drive the terminal.
  const safe = safeText(text ?? String(v));
  return typeof v === 'string' && /\s/.test(safe) ? JSON.stringify(safe) : safe;
};

/** One pino JSON line as one readable line (with an error's stack below it); a line that is not JSON as it is. */
export function prettyLine(line: string, opts: { color?: boolean } = {}): string {
  const color = opts.color ?? false;
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const [label, code] = LEVELS[Number(rec.level)] ?? [String(rec.level).toUpperCase().padEnd(5), '0'];
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const fields: string[] = [];
  let stack = '';
  for (const [k, v] of Object.entries(rec)) {
    if (HEAD.has(k) || v === undefined) continue;
    if (k === 'err' && v && typeof v === 'object') {
      const e = v as { type?: string; message?: string; stack?: string };
      fields.push(`err=${value(`${e.type ?? 'Error'}: ${e.message ?? ''}`)}`);
      if (e.stack) stack = `\n${safeText(e.stack, { multiline: true }).replace(/^/gm, '    ')}`;
      continue;
    }
    fields.push(`${paint(color, '2', `${k}=`)}${value(v)}`);
  }
  const msg = typeof rec.msg === 'string' ? safeText(rec.msg) : '';
  return `${paint(color, '90', time)} ${paint(color, code, label)} ${msg}${fields.length ? `  ${fields.join(' ')}` : ''}${stack}\n`;
}

/** A pino destination writing pretty lines synchronously to `fd` (2: stderr), so nothing is lost at exit. */
export function prettyDestination(fd = 2, color = true): { write(line: string): void } {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) writeSync(fd, prettyLine(line, { color }));
    },
  };
}
