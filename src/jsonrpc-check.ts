/**
 * Checks one incoming JSON-RPC line before the SDK sees it, so that every request with an id gets an answer with
 * the code JSON-RPC prescribes: -32700 for bad JSON, -32600 for a bad envelope, -32602 for bad params of the
 * methods we serve. The SDK would drop the first two silently (its transport reports them to onerror only) and
 * answer the third with -32603 or -32602 carrying a raw zod issue dump. Messages here are short and name the field.
 *
 * Notifications and responses are never answered (JSON-RPC forbids it); a bad one is dropped, with a reason to log.
 */
import { specTypeSchemas, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/server';

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const INVALID_PARAMS = -32602;
export const INTERNAL_ERROR = -32603;

export interface ErrorReply {
  jsonrpc: '2.0';
  id: RequestId | null;
  error: { code: number; message: string };
}

export type Checked =
  { kind: 'pass'; message: JSONRPCMessage } | { kind: 'reply'; reply: ErrorReply } | { kind: 'drop'; why: string };

export const errorReply = (id: RequestId | null, code: number, message: string): ErrorReply => ({
  jsonrpc: '2.0',
  id,
  error: { code, message },
});

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is RequestId => typeof v === 'string' || Number.isSafeInteger(v);
const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

const REQUEST_KEYS = new Set(['jsonrpc', 'id', 'method', 'params']);
const RESPONSE_KEYS = new Set(['jsonrpc', 'id', 'result', 'error']);

/** A field check returns what is wrong, or undefined. */
type ParamsCheck = (p: Obj | undefined) => string | undefined;
const str = (p: Obj, k: string, at = 'params') =>
  typeof p[k] === 'string' ? undefined : `${at}.${k} must be a string, got ${kindOf(p[k])}`;
const optStr = (p: Obj, k: string) => (p[k] === undefined ? undefined : str(p, k));
const obj = (p: Obj, k: string, at = 'params') =>
  isObj(p[k]) ? undefined : `${at}.${k} must be an object, got ${kindOf(p[k])}`;
const optObj = (p: Obj, k: string) => (k in p ? obj(p, k) : undefined);
const first = (...checks: (() => string | undefined)[]) => {
  for (const c of checks) {
    const why = c();
    if (why) return why;
  }
  return undefined;
};
const required =
  (check: (p: Obj) => string | undefined): ParamsCheck =>
  (p) =>
    p ? check(p) : 'params are required';
const optional =
  (check: (p: Obj) => string | undefined): ParamsCheck =>
  (p) =>
    p ? check(p) : undefined;

/** The params of the methods itguard serves; other methods go on to the SDK (method not found, or its own check). */
const PARAMS: Record<string, ParamsCheck> = {
  initialize: required((p) =>
    first(
      () => str(p, 'protocolVersion'),
      () => obj(p, 'capabilities'),
      () => obj(p, 'clientInfo'),
      () => str(p.clientInfo as Obj, 'name', 'params.clientInfo'),
      () => str(p.clientInfo as Obj, 'version', 'params.clientInfo'),
    ),
  ),
  'tools/list': optional((p) => optStr(p, 'cursor')),
  'tools/call': required((p) =>
    first(
      () => str(p, 'name'),
      () => optObj(p, 'arguments'),
      // 2026-07-28 (MRTR): the retry of a call answered input_required carries these two.
      () => optObj(p, 'inputResponses'),
      () => optStr(p, 'requestState'),
    ),
  ),
  'logging/setLevel': required((p) =>
    valid('LoggingLevel', p.level) ? undefined : `params.level must be one of ${LOGGING_LEVELS.join(', ')}`,
  ),
};

/** _meta is common to every request: an object, and its progressToken a string or an integer. */
function checkMeta(p: Obj | undefined): string | undefined {
  if (!p || p._meta === undefined) return undefined;
  if (!isObj(p._meta)) return `params._meta must be an object, got ${kindOf(p._meta)}`;
  const t = p._meta.progressToken;
  if (t !== undefined && !isId(t)) return `params._meta.progressToken must be a string or an integer, got ${kindOf(t)}`;
  return undefined;
}

/** The MCP log levels (RFC 5424 severities), for the message; the SDK's schema decides. */
const LOGGING_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

type Issues = readonly { message: string; path?: readonly (PropertyKey | { key: PropertyKey })[] | undefined }[];
/** The SDK's spec schemas (Standard Schema, synchronous): the issues of `v` against one, or undefined when it passes. */
function issuesOf(type: 'JSONRPCMessage' | 'LoggingLevel', v: unknown): Issues | undefined {
  const r = specTypeSchemas[type]['~standard'].validate(v);
  return 'issues' in r && r.issues ? r.issues : undefined;
}
const valid = (type: 'JSONRPCMessage' | 'LoggingLevel', v: unknown) => issuesOf(type, v) === undefined;

/** The SDK's own schema is the last word; its first issue, in one line, names the field when ours did not. */
function sdkCheck(v: Obj): string | undefined {
  const issues = issuesOf('JSONRPCMessage', v);
  if (!issues) return undefined;
  const issue = issues[0];
  const path = (issue?.path ?? []).map((k) => String(typeof k === 'object' ? k.key : k)).join('.');
  return issue ? `${path || 'message'}: ${issue.message}`.slice(0, 120) : 'not a JSON-RPC 2.0 message';
}

export function checkLine(line: string): Checked {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { kind: 'reply', reply: errorReply(null, PARSE_ERROR, 'Parse error: the line is not valid JSON') };
  }
  return checkMessage(v);
}

export function checkMessage(v: unknown): Checked {
  if (Array.isArray(v))
    return {
      kind: 'reply',
      reply: errorReply(null, INVALID_REQUEST, 'Invalid Request: batches are not supported; send one message per line'),
    };
  if (!isObj(v))
    return {
      kind: 'reply',
      reply: errorReply(null, INVALID_REQUEST, `Invalid Request: a message must be a JSON object, got ${kindOf(v)}`),
    };

  // A response (no method): answer nothing, whatever is wrong with it.
  if (!('method' in v) && ('result' in v || 'error' in v)) {
    const why =
      v.jsonrpc !== '2.0'
        ? 'jsonrpc is not "2.0"'
        : !isId(v.id)
          ? 'bad id'
          : (Object.keys(v).find((k) => !RESPONSE_KEYS.has(k)) ?? sdkCheck(v));
    return why ? { kind: 'drop', why: `response: ${why}` } : { kind: 'pass', message: v as JSONRPCMessage };
  }

  const isRequest = 'id' in v;
  // Security: an id we cannot echo faithfully is answered with null, never with a coerced value.
  const id = isRequest && isId(v.id) ? v.id : null;
  const bad = (code: number, message: string): Checked =>
    isRequest ? { kind: 'reply', reply: errorReply(id, code, message) } : { kind: 'drop', why: message };

  if (v.jsonrpc !== '2.0') return bad(INVALID_REQUEST, 'Invalid Request: jsonrpc must be "2.0"');
  if (!('method' in v)) return bad(INVALID_REQUEST, 'Invalid Request: method is missing');
  if (typeof v.method !== 'string')
    return bad(INVALID_REQUEST, `Invalid Request: method must be a string, got ${kindOf(v.method)}`);
  if (isRequest && id === null) return bad(INVALID_REQUEST, 'Invalid Request: id must be a string or an integer');
  const extra = Object.keys(v).find((k) => !REQUEST_KEYS.has(k));
  if (extra !== undefined) return bad(INVALID_REQUEST, `Invalid Request: unexpected member "${extra.slice(0, 40)}"`);
  if ('params' in v && !isObj(v.params))
    return bad(INVALID_PARAMS, `Invalid params: params must be an object, got ${kindOf(v.params)}`);

  const params = v.params as Obj | undefined;
  const why = checkMeta(params) ?? (isRequest ? PARAMS[v.method]?.(params) : undefined);
  if (why) return bad(INVALID_PARAMS, `Invalid params: ${why}`);
  const sdk = sdkCheck(v);
  if (sdk)
    return bad(
      sdk.startsWith('params') ? INVALID_PARAMS : INVALID_REQUEST,
      `${sdk.startsWith('params') ? 'Invalid params' : 'Invalid Request'}: ${sdk}`,
    );
  return { kind: 'pass', message: v as JSONRPCMessage };
}

/**
 * The id of an oversized line, if it can be had cheaply: a top-level "id" member within the first bytes we kept.
 * A tiny scanner (strings, escapes, nesting depth) so an "id" inside params is never taken for the request's.
 */
export function recoverId(head: string): RequestId | null {
  let depth = 0;
  let expectKey = false; // just after "{" or "," at the top level
  for (let i = 0; i < head.length;) {
    const c = head[i]!;
    if (c === '"') {
      let s = '';
      for (i++; i < head.length && head[i] !== '"'; i++) s += head[i] === '\\' ? (head[++i] ?? '') : head[i];
      if (i >= head.length) return null; // cut off inside a string
      i++;
      if (depth === 1 && expectKey && s === 'id') {
        // A number must be followed by its terminator: a head cut inside "id":123 must not read as 12.
        const m = /^\s*:\s*(-?\d+(?=\s*[,}])|"(?:[^"\\]|\\.)*")/.exec(head.slice(i));
        const value = m ? (JSON.parse(m[1]!) as unknown) : undefined;
        return isId(value) ? value : null;
      }
      expectKey = false;
      continue;
    }
    if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1 && c === '{';
    } else if (c === '}' || c === ']') {
      depth--;
      expectKey = false;
    } else if (c === ',') expectKey = depth === 1;
    else if (!/\s/.test(c)) expectKey = false;
    i++;
  }
  return null;
}

/**
 * The net behind checkMessage, for outgoing errors: the SDK answers params that fail its own schema with the zod
 * issue list as the message (-32603, or -32602 for tools/call). Such a dump becomes one line naming the first field;
 * the full text is returned so the caller can log it. Anything else passes unchanged.
 */
export function tidyError(message: JSONRPCMessage): { message: JSONRPCMessage; dump?: string } {
  if (!('error' in message) || typeof message.error.message !== 'string') return { message };
  const text = message.error.message;
  const at = text.indexOf('[');
  if (at === -1) return { message };
  let issues: unknown;
  try {
    issues = JSON.parse(text.slice(at));
  } catch {
    return { message };
  }
  const isIssue = (i: unknown): i is { path: unknown[]; message: string } =>
    isObj(i) && Array.isArray(i.path) && typeof i.message === 'string';
  if (!Array.isArray(issues) || !issues.every(isIssue)) return { message };
  const first = issues[0] as { path: unknown[]; message: string } | undefined;
  const where = first ? `${first.path.map(String).join('.') || 'params'}: ${first.message}`.slice(0, 120) : 'params';
  // A result that fails the SDK's schema is our bug, not the caller's.
  const ours = /result/i.test(text.slice(0, at));
  const error = ours
    ? { code: INTERNAL_ERROR, message: 'Internal error: the server built an invalid result' }
    : { code: INVALID_PARAMS, message: `Invalid params: ${where}` };
  return { message: { ...message, error }, dump: text };
}
