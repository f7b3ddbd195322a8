/**
 * Calendar windows in the policy's time zone: a `day` window is the local calendar day, an `hour` window the
 * local clock hour. DST-safe: boundaries are found from local wall-clock fields, not by adding fixed offsets.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();
function fmt(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

interface Wall {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
}

function wall(ms: number, tz: string): Wall {
  const parts: Record<string, number> = {};
  for (const p of fmt(tz).formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { y: parts.year!, mo: parts.month!, d: parts.day!, h: parts.hour!, mi: parts.minute!, s: parts.second! };
}

/** The zone's offset from UTC at instant ms (local − UTC), in ms. */
function offset(ms: number, tz: string): number {
  const w = wall(ms, tz);
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) - Math.floor(ms / 1000) * 1000;
}

/** The UTC instant of a local wall-clock time (the earlier one if ambiguous, the next valid one if skipped). */
function fromWall(y: number, mo: number, d: number, h: number, tz: string): number {
  const asUtc = Date.UTC(y, mo - 1, d, h);
  let guess = asUtc - offset(asUtc, tz);
  guess = asUtc - offset(guess, tz);
  return guess;
}

export type WindowKind = 'hour' | 'day';

/** The last window computed per (kind, zone): Intl formatting is the costly part, and calls cluster in time. */
const recent = new Map<string, { start: number; end: number }>();

function windowOf(kind: WindowKind, ms: number, tz: string): { start: number; end: number } {
  const k = `${kind}|${tz}`;
  const hit = recent.get(k);
  if (hit && ms >= hit.start && ms < hit.end) return hit;
  const w = wall(ms, tz);
  const win = {
    start: kind === 'day' ? fromWall(w.y, w.mo, w.d, 0, tz) : fromWall(w.y, w.mo, w.d, w.h, tz),
    end: computeEnd(kind, ms, tz),
  };
  recent.set(k, win);
  return win;
}

export const windowStart = (kind: WindowKind, ms: number, tz: string): number => windowOf(kind, ms, tz).start;
export const windowEnd = (kind: WindowKind, ms: number, tz: string): number => windowOf(kind, ms, tz).end;

function computeEnd(kind: WindowKind, ms: number, tz: string): number {
  const w = wall(ms, tz);
  if (kind === 'day') return fromWall(w.y, w.mo, w.d + 1, 0, tz);
  // The next local hour; if a DST jump skips it, fromWall lands on the first valid instant after.
  const next = fromWall(w.y, w.mo, w.d, w.h + 1, tz);
  if (next > ms) return next;
  const w2 = wall(ms + 3600_000, tz);
  return fromWall(w2.y, w2.mo, w2.d, w2.h, tz);
}
