/** What every CLI verb shares: flags, the database path, the policy, output and exit codes (0 ok, 1 check failed, 2 usage/config). */
import { config } from '../config.js';
import { userInfo } from 'node:os';
import { loadPolicy, PolicyError, type LoadedPolicy } from '../policy/load.js';
import { safeJson, safeText } from '../terminal.js';

export class UsageError extends Error {}

export interface Flags {
  db: string;
  policyFlag: string | undefined;
  json: boolean;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export const defaultDbPath = (flag?: string): string => flag ?? config().dbFile ?? './data/itguard.db';

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
    if (e instanceof PolicyError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
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
export const printJson = (v: unknown): void => out(safeJson(v, 2));

export function requireString(flags: Flags, name: string): string {
  const v = flags.values[name];
  if (typeof v !== 'string' || !v.trim()) throw new UsageError(`--${name} is required`);
  return v;
}

export const iso = (ms: number | null | undefined): string => (ms ? new Date(ms).toISOString() : '-');
