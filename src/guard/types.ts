/**
 * The shapes the pipeline passes around: a call (one tools/call as it moves through the guards) and the
 * guard/handler function types. The tool definition a call carries is in src/core/tool.ts.
 */
import type {
  CallToolResult,
  ElicitRequestFormParams,
  ElicitRequestURLParams,
  ElicitResult,
  InputRequests,
  InputResponses,
  ServerContext,
} from '@modelcontextprotocol/server';
import type { Tier, ToolPolicy } from '../core/policy.js';
import type { AnyTool, Principal, Resolved } from '../core/tool.js';
import type { CapHold, CapItem } from '../store/ports/index.js';
import type { UnitOfWork } from '../store/unit.js';
import type { BudgetRule } from '../policy/schema.js';
import type { GuardError } from '../core/errors.js';
import type { AdmitResult, BeginResult } from '../store/ports/index.js';
import type { ReserveResult } from '../store/ports/index.js';
import type { TaskRef } from './task.js';

/**
 * A 2025-11-25 MCP session (stdio: the process's connection; HTTP: one Mcp-Session-Id), or a 2026-07-28 stdio
 * connection. It holds no counters: every bound lives in the store, per task (src/guard/task.ts), and a session is
 * only one of the ways a task is identified. The 2026-07-28 protocol has no sessions: a call on it carries none
 * (`Call.session` is undefined).
 */
export interface SessionState {
  id: string;
  transport: 'stdio' | 'http' | 'memory';
  startedAt: number;
}

/** The SDK's handler context of the MCP request a call came in on (notifications, log, signal). */
export type McpExtra = ServerContext;

/** The protocol era of the connection a call came in on: 2025-11-25 (`legacy`) or 2026-07-28 (`modern`). */
export type Era = 'legacy' | 'modern';

/** A cap reservation's preview for approvers: what this call would bring each rule to. */
export interface CapPreview {
  rule: string;
  measure: string;
  amount: number;
  used: number;
  limit: number;
}

/**
 * What the steps have decided about one call, in one place. Each field has one writer: the step named beside it.
 * `caps.holder` says who gives the reservation back: the caps step (`call`), the approval request that took it
 * over (`approval`), or nobody, because it was already returned (`none`).
 */
export interface CallState {
  /** validate: the call's arguments passed the schema (so `args` is the parsed, filled action). */
  validated: boolean;
  /** idempotency: the request id every record of this call shares (explicit key, derived key or both). */
  requestId?: string;
  /** caps: `hold` is the request the reservation is recorded on (write tools), undefined for other calls. */
  caps?: { items: CapItem[]; preview: CapPreview[]; holder: 'call' | 'approval' | 'none'; hold: CapHold | undefined };
  /** validate: what the tool's resolve step found (cap keys, tier, facts). */
  resolved: Resolved;
  /** approval: shadow mode's would-be tier (the gate itself is not run). */
  shadowTier?: Tier;
  /**
   * approval (MRTR gates): the `input_required` answer this call gives instead of its APPROVAL_PENDING refusal, on
   * a 2026-07-28 connection. Kept here, not in the refusal's details, so the signed state never reaches the audit.
   */
  inputRequired?: { inputRequests: InputRequests; requestState: string };
  /** audit: the outcome is recorded by the audit step; the denial audit records everything else. */
  audited: boolean;
  /** execute: when the side effect started; undefined = nothing executed. */
  executedAt?: number;
  /**
   * units: the call's two units of work (DESIGN §5), opened by the pipeline's `units` step; undefined for a request
   * the executor runs before its `units` step (never in practice) and in guard unit tests that build calls by hand.
   */
  units?: CallUnits;
}

/**
 * A call's two units of work. The steps before the side effect add to `admission` (the budget's admit, the
 * idempotency begin, the cap reservations, the write's intent), which the admission step commits in one
 * transaction; the steps add what they leave behind to `settlement` (the outcome record, the idempotency result,
 * cap releases, the budget settle), which the units step commits as the call ends, group-committed with other
 * calls'. A call refused before admission commits has its admission's operations moved into its settlement.
 */
export interface CallUnits {
  admission: UnitOfWork;
  settlement: UnitOfWork;
  /** budget: the admit, decided inside whichever unit runs it (set by the operation itself, in the transaction). */
  admit?: {
    result?: AdmitResult;
    promise: Promise<AdmitResult>;
    /** The unit the admit is an operation of (the admission, or one of its own when the budget step refused early). */
    unit: UnitOfWork;
    /** The windowed rules of the call's tool: the settle counts against the same ones. */
    rules: readonly BudgetRule[];
    /** A fresh trip's alarms were raised (once per call). */
    alarmed?: boolean;
    /** The refusal built from a refused admit (once per call). */
    refusal?: GuardError;
  };
  /** admission: what the planned operations decided (undefined: the operation did not run). */
  planned?: {
    begin?: Promise<BeginResult | undefined>;
    reserve?: Promise<ReserveResult | undefined>;
    intent?: Promise<boolean>;
  };
}

export interface Call {
  tool: AnyTool;
  toolPolicy: ToolPolicy;
  rawArgs: unknown;
  /** The validated arguments (set by the validate step; rawArgs until then). */
  args: Record<string, unknown>;
  principal: Principal;
  /** The 2025-11-25 session the call came in on; undefined on 2026-07-28, which has no sessions. */
  session: SessionState | undefined;
  /** The task the call counts in (src/guard/task.ts), identified when the call arrived. */
  task: TaskRef;
  /** The client sent a malformed task id: the refusal's message (the call counts in `task`, then is refused). */
  taskInvalid?: string | undefined;
  traceId: string;
  signal: AbortSignal;
  startedAt: number;
  /** The backend's request id for this action (set by the idempotency step for write tools). */
  idempotencyKey: string | undefined;
  state: CallState;
  /** The MCP request's extra (notifications); absent in guard unit tests and for approved requests run later. */
  mcp: McpExtra | undefined;
  /** 2026-07-28 retries: the echoed requestState (raw) and the client's inputResponses. */
  resume?: { state: string | undefined; responses: InputResponses | undefined } | undefined;
  /** What the connected client can do for the human gates; absent when no client is attached. */
  client: ClientGate | undefined;
}

export const newCallState = (): CallState => ({ validated: false, audited: false, resolved: {} });

/**
 * How the human gates may reach the user behind the calling client, decided in one place (`clientGate` in
 * src/client-gate.ts). `form`/`url` say which elicitation modes can be used for this call; a gate that finds
 * neither takes the out-of-band path (an approver, a verification link).
 */
export interface ClientGate {
  /** The era of the connection, for what the gates tell the agent. */
  era: Era;
  /** Push elicitation (2025-11-25) in these modes. */
  form: boolean;
  url: boolean;
  /** 2026-07-28: in-band prompts as `input_required` results (MRTR), in the modes this request declared. */
  mrtr?: { form: boolean; url: boolean } | undefined;
  elicit(
    params: ElicitRequestFormParams | ElicitRequestURLParams,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<ElicitResult>;
  /** Sends a progress notification if the client asked for progress (a progressToken); otherwise does nothing. */
  progress(progress: number, total: number, message: string): Promise<void>;
}

export type Handler = (call: Call) => Promise<CallToolResult>;
export type Guard = (next: Handler) => Handler;
