/** Finds, parses and validates the policy. Errors name the path and the rule; the caller exits 2. */
import { existsSync, readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { formatIssues } from '../issues.js';
import { DEMO_POLICY_YAML } from './demo.js';
import { policySchema, toPolicy, type Policy } from './schema.js';

export class PolicyError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid policy ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
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
  if (process.env.ITGUARD_POLICY) return process.env.ITGUARD_POLICY;
  if (existsSync('itguard.yaml')) return 'itguard.yaml';
  return undefined;
}

export function loadPolicy(flag?: string): LoadedPolicy {
  const file = resolvePolicySource(flag);
  if (!file) return { policy: parsePolicy(DEMO_POLICY_YAML, 'built-in demo policy'), source: 'built-in demo policy' };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PolicyError(file, [`cannot read: ${(e as Error).message}`]);
  }
  return { policy: parsePolicy(text, file), source: file };
}

export function parsePolicy(text: string, source = 'policy'): Policy {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    throw new PolicyError(source, doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  }
  const parsed = policySchema.safeParse(doc.toJS());
  if (!parsed.success) throw new PolicyError(source, formatIssues(parsed.error.issues));
  return toPolicy(parsed.data);
}
