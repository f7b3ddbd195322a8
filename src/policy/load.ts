/** Finds, parses and validates the policy. Errors name the path and the rule; the caller exits 2. */
import { config } from '../config.js';
import { existsSync, readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { formatIssues } from '../issues.js';
import { DEMO_POLICY_YAML } from './demo.js';
import { policySchema, toPolicy, type Policy } from './schema.js';

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    // One problem reads on one line (`itguard policy check` prints nothing else); several get a line each.
    super(
      problems.length === 1
        ? `invalid policy ${source}: ${problems[0]}`
        : `invalid policy ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  }
}

export interface LoadedPolicy {
  policy: Policy;
  /** Where it came from: a file path or "built-in demo policy". */
  source: string;
}

/** --policy FILE, else ITGUARD_POLICY, else ./itguard.yaml if present, else the built-in demo policy. */
export function resolvePolicySource(flag?: string): string | undefined {
  if (flag) return flag;
  const fromEnv = config().policyFile;
  if (fromEnv) return fromEnv;
  if (existsSync('itguard.yaml')) return 'itguard.yaml';
  return undefined;
}

export function loadPolicy(flag?: string): LoadedPolicy {
  const file = resolvePolicySource(flag);
  if (!file) return { policy: demoPolicy(), source: 'built-in demo policy' };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PolicyError(file, [`cannot read: ${(e as Error).message}`]);
  }
  return { policy: parsePolicy(text, file), source: file };
}

/**
 * How many alias expansions toJS allows (the yaml library's maxAliasCount, its default written out). It stops
 * "billion laughs" files, where a few lines of nested aliases expand to gigabytes; a policy needs none of that.
 */
export const MAX_YAML_ALIASES = 100;

const firstLine = (s: string): string => s.split('\n')[0] ?? '';

/**
 * The bundle build (scripts/postbuild.mjs) defines this as DEMO_POLICY_YAML already parsed to plain data, so a
 * start on the built-in policy skips the YAML parser; it is still validated like any file. Undefined under tsc.
 */
declare const __ITGUARD_DEMO_POLICY_DATA__: unknown;

function demoPolicy(): Policy {
  const source = 'built-in demo policy';
  if (typeof __ITGUARD_DEMO_POLICY_DATA__ === 'undefined') return parsePolicy(DEMO_POLICY_YAML, source);
  return validatePolicy(structuredClone(__ITGUARD_DEMO_POLICY_DATA__), source);
}

export function parsePolicy(text: string, source = 'policy'): Policy {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    throw new PolicyError(
      source,
      doc.errors.map((e) => `YAML: ${firstLine(e.message)}`),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    // yaml throws a ReferenceError ("Excessive alias count ...") past maxAliasCount; anything else is reported as it is.
    const message = e instanceof Error ? e.message : String(e);
    throw new PolicyError(source, [
      /alias count/i.test(message)
        ? `YAML: aliases expand past the limit of ${MAX_YAML_ALIASES} (a "billion laughs" document); write the values out instead`
        : `YAML: ${firstLine(message)}`,
    ]);
  }
  return validatePolicy(raw, source);
}

function validatePolicy(raw: unknown, source: string): Policy {
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) throw new PolicyError(source, formatIssues(parsed.error.issues));
  return toPolicy(parsed.data);
}
