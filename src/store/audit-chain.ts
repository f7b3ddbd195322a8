/**
 * The audit chain as every store adapter writes and checks it (DESIGN §5): the record an event becomes (arguments
 * redacted, bounded and stored once), its canonical text, the link hash = SHA-256(prev_hash ‖ text) or HMAC-SHA-256
 * keyed with ITGUARD_AUDIT_KEY, and the verifier that recomputes a chain one record at a time. No database here: the
 * SQLite adapter (sqlite/audit-store.ts) and the PostgreSQL adapter (postgres/runner.ts, audit-read.ts) store the
 * records; this module decides what they are.
 */
import { canonicalJson, hmacSha256, oversize, redact, sha256 } from '../canonical.js';
import { AuditKeyMismatch, KEY_FINGERPRINT, keyFingerprint } from './audit-key.js';

export { AuditKeyMismatch, KEY_FINGERPRINT, keyFingerprint };

export const GENESIS = '0'.repeat(64);

/**
 * Arguments beyond these bounds (malformed or hostile input) are kept as their size and the hash of their
 * redacted canonical JSON, not their text: `{truncated, why, chars, sha256}` and the bound that was passed.
 * Real tool arguments are two or three levels deep and a few hundred characters. The depth bound also keeps
 * the table safe for readers that walk stored arguments recursively (JSON.stringify overflows near 4,000).
 */
export const MAX_ARGS_CHARS = 16_384;
export const MAX_ARGS_DEPTH = 64;
/** Members in all: checked before redaction, so a huge value is walked once more only to hash it. */
const MAX_ARGS_NODES = MAX_ARGS_CHARS;

function storedArgs(args: unknown): string {
  const over = oversize(args, MAX_ARGS_DEPTH, MAX_ARGS_NODES);
  // canonicalJson and redact walk iteratively: the size and hash are computed even for a value too deep to store.
  const json = canonicalJson(redact(args));
  if (!over && json.length <= MAX_ARGS_CHARS) return json;
  const bound =
    over?.why === 'too deep'
      ? { why: 'too deep', max_depth: over.maxDepth }
      : { why: 'too large', max_chars: MAX_ARGS_CHARS };
  return canonicalJson({ truncated: true, ...bound, chars: json.length, sha256: sha256(json) });
}

/**
 * A write's intent and outcome records carry the same arguments object (the call's `args`, settled by validation
 * and not changed after it): its stored form and hash are computed for the first record and reused for the second.
 * Keyed by identity, so this relies on what every caller does: an object handed to the audit is not changed
 * afterwards. The entry lives as long as the object.
 */
const storedCache = new WeakMap<object, { json: string; sha256: string }>();
function storedOnce(args: unknown): { json: string; sha256: string } {
  const cacheable = typeof args === 'object' && args !== null;
  const hit = cacheable ? storedCache.get(args) : undefined;
  if (hit) return hit;
  const json = storedArgs(args);
  const out = { json, sha256: sha256(json) };
  if (cacheable) storedCache.set(args, out);
  return out;
}

export interface AuditEvent {
  event: string;
  actor: string;
  /** The human the actor acted for (OAuth: the token's email or sub); absent when none is known. */
  onBehalfOf?: string | undefined;
  traceId?: string | undefined;
  sessionId?: string | undefined;
  /** The task the call counted in (its display id: src/guard/task.ts). */
  taskId?: string | undefined;
  tool?: string | undefined;
  /** Stored redacted: values under secret-looking keys never reach the table. */
  args?: unknown;
  outcome?: string | undefined;
  code?: string | undefined;
  detail?: Record<string, unknown> | undefined;
  /** When the event happened, if not now (a state change records the time it wrote). */
  ts?: number;
}

export interface AuditRow {
  seq: number;
  ts: number;
  event: string;
  trace_id: string | null;
  actor: string;
  session_id: string | null;
  tool: string | null;
  args: string | null;
  args_sha256: string | null;
  outcome: string | null;
  code: string | null;
  detail: string | null;
  on_behalf_of: string | null;
  task_id: string | null;
  prev_hash: string;
  hash: string;
}

/**
 * SQLite stores text as UTF-8, which cannot hold a lone UTF-16 surrogate: the stored string would differ from the
 * one hashed, and `audit verify` would call an untouched record altered. The text columns carry what a client sent
 * (an unknown tool name is audited as given), so each is made well-formed, a lone surrogate becoming U+FFFD, before
 * it is hashed and stored: what `String.prototype.toWellFormed` does (ES2024, past this project's lib). `args` and
 * `detail` need nothing: canonical JSON escapes lone surrogates as `\uXXXX`.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const HAS_SURROGATE = /[\uD800-\uDFFF]/;
function wellFormed(s: string): string;
function wellFormed(s: string | null): string | null;
function wellFormed(s: string | null): string | null {
  if (s === null) return s;
  const t = HAS_SURROGATE.test(s) ? s.replace(LONE_SURROGATE, '\uFFFD') : s;
  // NUL too: PostgreSQL text cannot hold it (SQLSTATE 22021 would refuse the unit and lose its record), so both
  // stores keep U+FFFD in its place. Records written before this kept NUL on SQLite and still verify as stored.
  return t.includes('\0') ? t.replaceAll('\0', '\uFFFD') : t;
}

/** How one call ended, as the audit has it; `detail` holds the call's `started_at`. */
export type CallRecord = Pick<AuditRow, 'event' | 'outcome' | 'code' | 'detail'>;

/** Confirm-tier decisions on one tool. */
export interface ConfirmCount {
  tool: string;
  event: 'approval.confirmed' | 'approval.declined';
  n: number;
}

export type VerifyResult =
  | { ok: true; count: number; head: { seq: number; hash: string } }
  | { ok: false; count: number; brokenAt: number; reason: string };

/**
 * The canonical record a link hashes. `on_behalf_of` (migration 7) joins the list only when set: records without it
 * (all older ones, and those with no human behind them) hash exactly as they did before the column existed, and
 * a set value cannot be removed or changed without breaking the link.
 */
export const recordText = (r: Omit<AuditRow, 'prev_hash' | 'hash'>): string =>
  canonicalJson([
    r.seq,
    r.ts,
    r.event,
    r.trace_id,
    r.actor,
    r.session_id,
    r.tool,
    r.args,
    r.args_sha256,
    r.outcome,
    r.code,
    r.detail,
    ...(r.on_behalf_of === null ? [] : [r.on_behalf_of]),
    // Migration 10: as an object, so it can never be read as the positional on_behalf_of (nor the other way round).
    ...(r.task_id === null ? [] : [{ task: r.task_id }]),
  ]);

/** A chain head as `audit verify` prints it (`SEQ:HASH`); undefined when the text is not one. */
export function parseHead(v: unknown): { seq: number; hash: string } | undefined {
  const m = typeof v === 'string' ? /^([1-9][0-9]{0,15}):([0-9a-f]{64})$/.exec(v.trim()) : null;
  return m ? { seq: Number(m[1]), hash: m[2]! } : undefined;
}

/** A link of the chain: SHA-256(prev ‖ text), or HMAC-SHA-256 under the audit key when one is set. */
export const chainLink = (key: string | undefined, prev: string, text: string): string =>
  key ? hmacSha256(key, prev + text) : sha256(prev + text);

/** The stored record of `e` at `seq`, before its link (every store adapter writes exactly this, then hashes it). */
export function auditRecord(e: AuditEvent, seq: number, now: () => number): Omit<AuditRow, 'prev_hash' | 'hash'> {
  const stored = e.args === undefined ? undefined : storedOnce(e.args);
  const args = stored?.json ?? null;
  return {
    seq,
    ts: e.ts ?? now(),
    event: wellFormed(e.event),
    trace_id: wellFormed(e.traceId ?? null),
    actor: wellFormed(e.actor),
    session_id: wellFormed(e.sessionId ?? null),
    tool: wellFormed(e.tool ?? null),
    args,
    // Of the redacted arguments: a hash of a short secret could be brute-forced.
    args_sha256: stored?.sha256 ?? null,
    outcome: wellFormed(e.outcome ?? null),
    code: wellFormed(e.code ?? null),
    detail: e.detail === undefined ? null : canonicalJson(redact(e.detail)),
    on_behalf_of: wellFormed(e.onBehalfOf ?? null),
    task_id: wellFormed(e.taskId ?? null),
  };
}

/**
 * Recomputes a chain from its first record, one record at a time (rows pushed in seq order), and reports the first
 * link that does not hold: verifyChain over an iterable, or a chain read in batches (the PostgreSQL adapter streams
 * it, postgres/audit-read.ts). With `expectHead` (a head anchored elsewhere earlier), the chain must also reach that
 * seq and hold that hash there. `chainKey`: the key fingerprint the store records (undefined: none recorded yet).
 */
export class ChainVerifier {
  private prev = GENESIS;
  private expectedSeq = 1;
  private count = 0;
  private head = { seq: 0, hash: GENESIS };
  /** The failure, once there is one (from the start when the chain's key is not this one). */
  private broken: VerifyResult | undefined;

  constructor(
    private readonly key: string | undefined,
    chainKey: string | undefined,
    private readonly o: { expectHead?: { seq: number; hash: string } } = {},
  ) {
    const mine = keyFingerprint(key);
    // Security: a keyed chain is never verified without its key (nor an unkeyed one with a key): say which, plainly.
    if (chainKey !== undefined && chainKey !== mine)
      this.broken = {
        ok: false,
        count: 0,
        brokenAt: 1,
        reason: new AuditKeyMismatch(chainKey, mine).message.split(':')[0]!,
      };
  }

  /** Checks the next record; false once the chain is broken (no later record changes the result). */
  push(row: AuditRow): boolean {
    if (this.broken) return false;
    const fail = (brokenAt: number, reason: string): false => {
      this.broken = { ok: false, count: this.count, brokenAt, reason };
      return false;
    };
    if (row.seq !== this.expectedSeq) return fail(this.expectedSeq, `record ${this.expectedSeq} is missing`);
    if (row.prev_hash !== this.prev) return fail(row.seq, 'prev_hash does not match the previous record');
    const hash = chainLink(this.key, this.prev, recordText(row));
    if (hash !== row.hash)
      return fail(
        row.seq,
        this.key
          ? 'record content does not match its hash (altered, or a different ITGUARD_AUDIT_KEY)'
          : 'record content does not match its hash (altered, or the chain is keyed: set ITGUARD_AUDIT_KEY)',
      );
    const want = this.o.expectHead;
    if (want && row.seq === want.seq && hash !== want.hash)
      return fail(
        row.seq,
        `record ${row.seq} does not have the anchored hash ${want.hash}: the chain diverges from the anchored head (rewritten)`,
      );
    this.prev = hash;
    this.head = { seq: row.seq, hash };
    this.expectedSeq += 1;
    this.count += 1;
    return true;
  }

  /** The result once every record was pushed (or the first failure). */
  end(): VerifyResult {
    if (this.broken) return this.broken;
    const want = this.o.expectHead;
    if (want && this.head.seq < want.seq)
      return {
        ok: false,
        count: this.count,
        brokenAt: this.head.seq + 1,
        reason: `the chain ends at seq ${this.head.seq}, before the anchored head seq ${want.seq}: records were removed (truncated)`,
      };
    return { ok: true, count: this.count, head: this.head };
  }
}

/** A whole chain verified (ChainVerifier's rules over `rows`, in seq order). */
export function verifyChain(
  rows: Iterable<AuditRow>,
  key: string | undefined,
  chainKey: string | undefined,
  o: { expectHead?: { seq: number; hash: string } } = {},
): VerifyResult {
  const v = new ChainVerifier(key, chainKey, o);
  for (const row of rows) if (!v.push(row)) break;
  return v.end();
}
