/** Turns zod issues into one line each, `path: rule`, for config errors and INVALID_ARGUMENT alike. */
import type { z } from 'zod';

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function ruleOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return 'unknown key';
    case 'invalid_type':
      if (/received undefined$/.test(issue.message)) return 'required';
      return issue.message.startsWith('Invalid input: ')
        ? issue.message.slice('Invalid input: '.length)
        : `expected ${issue.expected}`;
    case 'too_small':
      if (issue.origin === 'string')
        return Number(issue.minimum) === 1 ? 'must not be empty' : `must be at least ${issue.minimum} characters`;
      if (issue.origin === 'array') return `must have at least ${issue.minimum} items`;
      return issue.message.startsWith('Too small')
        ? `must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`
        : issue.message;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      if (issue.origin === 'array') return `must have at most ${issue.maximum} items`;
      return issue.message.startsWith('Too big')
        ? `must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`
        : issue.message;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

/** One entry per problem; unknown keys get their own path (`a.b.extra: unknown key`). */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push(`${formatPath([...issue.path, k])}: unknown key`);
    } else {
      out.push(`${formatPath(issue.path) || '(root)'}: ${ruleOf(issue)}`);
    }
  }
  return out;
}
