/**
 * Canonical JSON (sorted keys, no whitespace) and hashes of it: the identity of "the same arguments".
 * Everything here walks values with an explicit stack, never recursion: raw tool arguments come from the
 * wire and can be nested far deeper than the call stack (JSON.parse accepts any depth; JSON.stringify and a
 * recursive walk overflow at a few thousand levels), and a denial of such a call must still be audited.
 */
import { createHmac, hash } from 'node:crypto';

const isContainer = (v: unknown): v is object => v !== null && typeof v === 'object';
/** What JSON.stringify leaves out of objects (and writes as null in arrays). */
const isSkipped = (v: unknown): boolean => v === undefined || typeof v === 'function' || typeof v === 'symbol';

/** Array-index keys (`"0"`..`"4294967294"`): a JS object lists them first, in numeric order. */
const isIndexKey = (k: string): boolean => /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 4294967295;

/**
 * Sorted keys in the order the recursive version wrote them: it built a new object with the sorted keys, and
 * an object lists array-index keys first (numerically), then the others in insertion (= sorted) order.
 */
function canonicalKeys(o: object): string[] {
  const keys = Object.keys(o).sort();
  const indices = keys.filter(isIndexKey);
  if (!indices.length) return keys;
  return [...indices.sort((a, b) => Number(a) - Number(b)), ...keys.filter((k) => !isIndexKey(k))];
}

type Frame =
  | { array: readonly unknown[]; i: number }
  | { object: Record<string, unknown>; keys: string[]; i: number; written: number; array?: undefined };

/**
 * `JSON.stringify` of the value with object keys sorted at every level and `undefined` members left out:
 * byte for byte what `JSON.stringify(sortKeys(value))` gave, for any depth. Objects other than plain ones and
 * arrays (Date, Map) are written as their own enumerable keys, as before. A cycle is a TypeError.
 */
export function canonicalJson(value: unknown): string {
  if (!isContainer(value)) return JSON.stringify(value);
  const parts: string[] = [];
  const stack: Frame[] = [];
  const path = new Set<object>();
  const open = (v: object): void => {
    if (path.has(v)) throw new TypeError('canonicalJson: the value is cyclic');
    path.add(v);
    if (Array.isArray(v)) {
      parts.push('[');
      stack.push({ array: v, i: 0 });
    } else {
      parts.push('{');
      stack.push({ object: v as Record<string, unknown>, keys: canonicalKeys(v), i: 0, written: 0 });
    }
  };
  const write = (v: unknown, inArray: boolean): void => {
    if (isContainer(v)) open(v);
    else parts.push(inArray && isSkipped(v) ? 'null' : JSON.stringify(v));
  };
  open(value);
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.array) {
      if (f.i < f.array.length) {
        if (f.i > 0) parts.push(',');
        write(f.array[f.i++], true);
        continue;
      }
      parts.push(']');
      path.delete(f.array);
    } else {
      let wrote = false;
      while (f.i < f.keys.length && !wrote) {
        const k = f.keys[f.i++]!;
        const v = f.object[k];
        if (isSkipped(v)) continue;
        parts.push(`${f.written++ ? ',' : ''}${JSON.stringify(k)}:`);
        write(v, false);
        wrote = true;
      }
      if (wrote) continue;
      parts.push('}');
      path.delete(f.object);
    }
    stack.pop();
  }
  return parts.join('');
}

/** One-shot `crypto.hash` (Node ≥ 20.12): no Hash object per call on the per-request token check. */
export const sha256 = (s: string): string => hash('sha256', s, 'hex');
export const hmacSha256 = (key: string, s: string): string => createHmac('sha256', key).update(s).digest('hex');

const SECRET_KEY = /pass(word)?|secret|token|otp|totp|code|link|credential|authorization|cookie/i;

/**
 * A copy of args with every value under a secret-looking key replaced. Used for the audit and for logs.
 * Any depth; a value shared by two members is copied once and shared, so a cycle stays a cycle (and
 * canonicalJson then refuses it) instead of looping here.
 */
export function redact(value: unknown): unknown {
  if (!isContainer(value)) return value;
  const copies = new Map<object, unknown[] | Record<string, unknown>>();
  const todo: object[] = [];
  const copyOf = (v: unknown): unknown => {
    if (!isContainer(v)) return v;
    let c = copies.get(v);
    if (!c) {
      c = Array.isArray(v) ? new Array<unknown>(v.length) : {};
      copies.set(v, c);
      todo.push(v);
    }
    return c;
  };
  const root = copyOf(value);
  for (let src = todo.pop(); src !== undefined; src = todo.pop()) {
    const dst = copies.get(src)!;
    if (Array.isArray(src)) for (let i = 0; i < src.length; i++) (dst as unknown[])[i] = copyOf(src[i]);
    else
      for (const [k, v] of Object.entries(src))
        (dst as Record<string, unknown>)[k] = SECRET_KEY.test(k) ? '[REDACTED]' : copyOf(v);
  }
  return root;
}

export type Oversize = { why: 'too deep'; maxDepth: number } | { why: 'too large'; maxNodes: number };

/**
 * Whether a value is nested deeper than `maxDepth` (a top-level object is depth 1) or has more than `maxNodes`
 * members in all; stops walking as soon as it knows, so its cost is bounded by the limits, not the value.
 */
export function oversize(value: unknown, maxDepth: number, maxNodes: number): Oversize | undefined {
  const todo: [unknown, number][] = [[value, 1]];
  const seen = new Set<object>();
  let nodes = 0;
  for (let e = todo.pop(); e !== undefined; e = todo.pop()) {
    const [v, depth] = e;
    if (!isContainer(v) || seen.has(v)) continue;
    if (depth > maxDepth) return { why: 'too deep', maxDepth };
    seen.add(v);
    const members = Array.isArray(v) ? (v as unknown[]) : Object.values(v);
    nodes += members.length;
    if (nodes > maxNodes) return { why: 'too large', maxNodes };
    for (const m of members) if (isContainer(m)) todo.push([m, depth + 1]);
  }
  return undefined;
}

/** The arguments that define an action: why it is done (reason) and the idempotency key are not part of it. */
export function actionArgs(args: Record<string, unknown>): Record<string, unknown> {
  const { reason: _r, idempotency_key: _k, ...rest } = args;
  return rest;
}
