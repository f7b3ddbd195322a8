/** What every CLI verb shares: flags, the database path, the policy, output and exit codes (0 ok, 1 check failed, 2 usage/config). */
import { config } from '../config.js';
import { userInfo } from 'node:os';
import { loadPolicy, PolicyError, type LoadedPolicy } from '../policy/load.js';
import { safeJson, safeText } from '../terminal.js';

export class UsageError extends Error {}

export interface Flags {
  db: string;
  /** --db or ITGUARD_DB was given (it wins over the policy's `store.path`). */
  dbExplicit?: boolean;
  policyFlag: string | undefined;
  json: boolean;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export const defaultDbPath = (flag?: string): string => flag ?? config().dbFile ?? './data/itguard.db';

/** The SQLite file of a verb: --db / ITGUARD_DB when given, else the policy's `store.path`, else ./data/itguard.db. */
export const sqliteFileOf = (
  flags: Pick<Flags, 'db' | 'dbExplicit'>,
  store: { kind: string; path?: string | undefined },
): string => (!flags.dbExplicit && store.kind === 'sqlite' && store.path ? store.path : flags.db);

export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
}

export function policyOrExit(flags: Flags): LoadedPolicy {
  try {
    return loadPolicy(flags.policyFlag);
  } catch (e) {
    if (e instanceof PolicyError) process.exit(fail(flags, 'CONFIG', e.message, 2));
    throw e;
  }
}

/**
 * stdout is for results (and --json documents); everything else goes to stderr. Both pass through safeText
 * (multi-line) as a last line of defence: no control character reaches the terminal from any verb. Callers
 * still escape each stored value with safeText (single-line), so a newline in it cannot fake a row.
 */
export const out = (s: string): void =>
  void process.stdout.write(safeText(s.endsWith('\n') ? s : `${s}\n`, { multiline: true }));
export const err = (s: string): void =>
  void process.stderr.write(safeText(s.endsWith('\n') ? s : `${s}\n`, { multiline: true }));
/**
 * The one `--json` document of a command (DESIGN §7): snake_case keys and ISO 8601 times, whatever shape the value
 * had inside (store rows keep epoch milliseconds; typed objects are camelCase). See jsonDoc.
 */
export const printJson = (v: unknown): void => out(safeJson(jsonDoc(v), 2));

/** Keys whose children are names (principals, tools, catalog ids), not fields: kept exactly as written. */
const NAME_MAPS = new Set(['principals', 'tools', 'apps', 'approvers', 'principals_from_groups']);
const snake = (k: string): string =>
  /^[a-z][a-zA-Z0-9]*$/.test(k) ? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : k;
/** A time field: `ts`, `*_at` (but `alarm_at`, a threshold); epoch milliseconds there (after 2001) become ISO 8601. */
const isTimeKey = (k: string): boolean => k === 'ts' || (k.endsWith('_at') && k !== 'alarm_at');

/**
 * `v` in the CLI's JSON convention: camelCase field names become snake_case (the children of NAME_MAPS keep their
 * names), and epoch-millisecond numbers under time fields become ISO 8601 strings. Done once here, so no verb can
 * print `createdAt: 1796586626027` again (issue 22).
 */
export function jsonDoc(v: unknown, key = '', names = false): unknown {
  if (Array.isArray(v)) return v.map((x) => jsonDoc(x, key));
  if (typeof v === 'number' && isTimeKey(key) && Number.isInteger(v) && v > 1e12) return new Date(v).toISOString();
  if (v === null || typeof v !== 'object') return v;
  const outObj: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const name = names ? k : snake(k);
    outObj[name] = jsonDoc(x, name, NAME_MAPS.has(name) && !names);
  }
  return outObj;
}

/** Codes of a failed command's `--json` document; the exit code says usage/config (2) or a failed check (1). */
export type FailCode = 'USAGE' | 'CONFIG' | 'NOT_FOUND' | 'CONFLICT' | 'REFUSED' | 'CHECK_FAILED' | 'INTERNAL';

/**
 * A command that fails says so in one sentence on stderr and, under `--json`, also as one JSON document on stdout
 * in the same convention as its success (`ok: false`, then `error: { code, message }`), so a script that parses
 * stdout is never left with nothing. Returns the exit code.
 */
export function fail(flags: Pick<Flags, 'json'>, code: FailCode, message: string, exit: 1 | 2): number {
  if (flags.json) printJson({ ok: false, error: { code, message } });
  err(message);
  return exit;
}

export function requireString(flags: Flags, name: string): string {
  const v = flags.values[name];
  if (typeof v !== 'string' || !v.trim()) throw new UsageError(`--${name} is required`);
  return v;
}

export const iso = (ms: number | null | undefined): string => (ms ? new Date(ms).toISOString() : '-');
