/**
 * The one registry of refusal codes (like fastify's errors.js). A refusal is a value: a tool result with
 * isError true that the model reads and recovers from. The machine-readable part goes in `_meta`.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';

export const ERROR_CODES = {
  KILL_SWITCH_ENGAGED: {
    retryable: false,
    next: 'Stop and tell the user that IT has paused automated actions; do not retry until they say it is resumed.',
  },
  SCOPE_DENIED: {
    retryable: false,
    next: 'This agent is not allowed to do this; tell the user to contact IT directly.',
  },
  TOOL_DISABLED: {
    retryable: false,
    next: 'This tool is switched off by policy; tell the user to contact IT directly.',
  },
  UNKNOWN_TOOL: { retryable: false, next: 'Call tools/list and use one of the tools it lists.' },
  INVALID_ARGUMENT: { retryable: false, next: 'Fix the named fields and call again.' },
  POLICY_DENIED: {
    retryable: false,
    next: 'Policy forbids this action for these arguments; tell the user to contact IT directly.',
  },
  NOT_FOUND: { retryable: false, next: 'Check the identifier (search first) and call again.' },
  BUDGET_EXHAUSTED: {
    retryable: false,
    next: 'A budget is used up (see budget, level and resets_at); summarise progress for the user and stop.',
  },
  LOOP_DETECTED: {
    retryable: false,
    next: 'The calls repeated themselves or failed too often and are stopped (see rule, level and clears_at); summarise for the user and stop.',
  },
  IN_PROGRESS: {
    retryable: true,
    next: 'The same request is still running; wait a few seconds and retry with the same idempotency_key.',
  },
  IDEMPOTENCY_CONFLICT: {
    retryable: false,
    next: 'This idempotency_key was used with other arguments; use a new key for a new request.',
  },
  CAP_EXCEEDED: {
    retryable: false,
    next: 'An aggregate limit is reached; tell the user and do not retry before resets_at.',
  },
  APPROVAL_DENIED: { retryable: false, next: 'The action was not approved; tell the user and do not retry it.' },
  APPROVAL_UNAVAILABLE: {
    retryable: false,
    next: 'No approval channel is available for this client; tell the user to contact IT directly.',
  },
  APPROVAL_PENDING: {
    retryable: true,
    next: 'Waiting on a human; check progress later with request_status and the request_id.',
  },
  BACKEND_ERROR: {
    retryable: false,
    next: 'The backend failed; see retryable, and if true retry later with the same idempotency_key.',
  },
  INTERNAL: { retryable: false, next: 'An unexpected error happened; give the user the trace_id and stop.' },
} as const satisfies Record<string, { retryable: boolean; next: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorOptions {
  retryable?: boolean;
  next?: string;
  /** Extra machine-readable facts for `_meta` (rule name, resets_at, request_id…). Never secrets. */
  details?: Record<string, unknown>;
}

export class GuardError extends Error {
  readonly retryable: boolean;
  readonly next: string;
  readonly details: Record<string, unknown>;
  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: ErrorOptions = {},
  ) {
    super(message);
    this.name = 'GuardError';
    this.retryable = opts.retryable ?? ERROR_CODES[code].retryable;
    this.next = opts.next ?? ERROR_CODES[code].next;
    this.details = opts.details ?? {};
  }

  toToolResult(traceId: string): CallToolResult {
    const meta = { code: this.code, retryable: this.retryable, trace_id: traceId, ...this.details };
    const text = `${this.code}: ${this.message}\nNext: ${this.next}\n(retryable: ${this.retryable ? 'yes' : 'no'}; trace_id: ${traceId})`;
    return { isError: true, content: [{ type: 'text', text }], _meta: { 'itguard/error': meta } };
  }
}

export const errorCodeOf = (r: CallToolResult): ErrorCode | undefined =>
  (r._meta?.['itguard/error'] as { code?: ErrorCode } | undefined)?.code;
