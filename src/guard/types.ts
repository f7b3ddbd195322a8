/**
 * The shapes the pipeline passes around: a tool definition (data), a call (one tools/call as it moves
 * through the guards), and the guard/handler function types.
 */
import type {
  CallToolResult,
  ElicitRequestFormParams,
  ElicitRequestURLParams,
  ElicitResult,
  InputRequests,
  InputResponses,
  ServerContext,
  ToolAnnotations,
} from '@modelcontextprotocol/server';
import type { z } from 'zod';
import type { Scope, Tier, ToolName, ToolPolicy } from '../policy/schema.js';
import type { Backends } from '../tools/backends.js';
import type { CapHold, CapItem } from '../store/caps-store.js';
import type { ApprovalsStore } from '../store/approvals-store.js';
import type { UnitOfWork } from '../store/unit.js';
import type { AdmitResult } from '../store/budget-store.js';
import type { BeginResult } from '../store/idempotency-store.js';
import type { ReserveResult } from '../store/caps-store.js';
import type { TaskRef } from './task.js';

export interface Principal {
  name: string;
  scopes: readonly Scope[];
  /**
   * The human the agent acts for, when the transport knows one (HTTP with an OAuth access token: its `email`, else
   * `sub`); recorded on every audit record of the call and on approval requests. Undefined over stdio, with static
   * bearer tokens and for client-credentials tokens. Never used to authorise: scopes come from the policy principal.
   */
  onBehalfOf?: string | undefined;
  /**
   * The stable identity of that human (OAuth: issuer + ' sub:' + `sub`; DESIGN §6 `on_behalf_of_id`): what every
   * comparison of people uses (separation of duties, `per: user` bounds, the `user` task identity). Undefined
   * exactly when `onBehalfOf` is.
   */
  onBehalfOfId?: string | undefined;
}

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

/** Keys a cap rule can be counted per, and the cost measure. */
export interface CapKeys {
  target?: string;
  requester?: string;
  costUsd?: number;
}

/**
 * What a tool's resolve step found out about a call, once, from its backends: the cap keys (target, requester,
 * cost), the tier when it depends on the arguments, and facts run() needs (the requester's e-mail). Every guard
 * after validation reads this; none queries a backend itself.
 */
export interface Resolved extends CapKeys {
  tier?: Tier;
  requesterEmail?: string;
}

export interface ResolveContext {
  backends: Backends;
  toolPolicy: ToolPolicy;
  signal: AbortSignal;
}

/** What a tool's run() returns; the pipeline turns it into a CallToolResult. */
export interface ToolOutput {
  text: string;
  data?: Record<string, unknown>;
}

export interface GuardView {
  killSwitch: { engaged: boolean; reason: string; changedAt: number };
  task: Record<string, unknown>;
  caps: Record<string, unknown>[];
  budgets: Record<string, unknown>[];
  loopBreaker: Record<string, unknown>;
}

/** Everything a tool may touch. Tools never import the store, logger or policy. */
export interface ToolContext {
  backends: Backends;
  principal: Principal;
  traceId: string;
  /** Explicit or derived idempotency key: backends use it as their request id. */
  idempotencyKey: string | undefined;
  /** The request id writes carry to the backend: the idempotency key, else the trace id. */
  requestId: string;
  /** What the resolve step found (cap keys, tier, the requester's e-mail). */
  resolved: Resolved;
  signal: AbortSignal;
  /** guard_status reads the guards' own view of this call's bounds. */
  guardView: () => GuardView;
  /** request_status reads approval requests (only the calling principal's). */
  approvals: ApprovalsStore;
  /** Base URL of this server's pages (reset links point there). */
  linksBase: string;
}

type Annotations = Required<
  Pick<ToolAnnotations, 'readOnlyHint' | 'destructiveHint' | 'idempotentHint' | 'openWorldHint'>
>;

export interface ToolDef<S extends z.ZodRawShape = z.ZodRawShape> {
  name: ToolName;
  title: string;
  description: string;
  input: S;
  /** 'none': every principal; 'any-write': any principal holding a write scope. */
  scope: Scope | 'none' | 'any-write';
  effect: 'read' | 'write';
  tier: Tier;
  annotations: Annotations;
  summary: (a: z.output<z.ZodObject<S>>) => string;
  /** Pure introspection with no effect (guard_status): answered while the kill switch is engaged, so the planner can see it. */
  servesWhileKilled?: boolean;
  /**
   * A status tool that refusals tell the agent to poll (request_status, guard_status): exempt from identical-call
   * counting and the session's call count, never from the principal budgets.
   */
  polling?: boolean;
  /** structuredContent's shape, published as the tool's outputSchema; text written by people is marked with `untrustedText`. */
  output?: z.ZodRawShape;
  /**
   * The one async look at the backends before any guard decides (validate step): argument policy beyond the
   * schema (directory users live, denied groups, allowed projects, catalog and device rules; throws GuardError),
   * defaults to fill in (a device, a version) so that what is approved and audited is the complete action, and
   * the Resolved facts (cap keys, tier). Run again before an approved request executes.
   */
  resolve?: (
    a: z.output<z.ZodObject<S>>,
    ctx: ResolveContext,
  ) => Promise<{ args?: Partial<z.output<z.ZodObject<S>>>; resolved?: Resolved } | void>;
  run: (a: z.output<z.ZodObject<S>>, ctx: ToolContext) => Promise<ToolOutput>;
  /**
   * Write tools: after a crash left a call in flight, asks the backend whether request `ctx.idempotencyKey`
   * happened. Returns its output if it did, undefined if it certainly did not. Without it, an orphaned call
   * is reported as unknown rather than run again.
   */
  recover?: (a: z.output<z.ZodObject<S>>, ctx: ToolContext) => Promise<ToolOutput | undefined>;
  /**
   * Write tools whose effect goes on after the call (an install job): the effect's state now, shown on a replay
   * under the stored result ("requested, pending" then "installed"). Undefined when there is nothing newer.
   */
  current?: (a: z.output<z.ZodObject<S>>, ctx: ToolContext) => Promise<ToolOutput | undefined>;
}

// Tool definitions are stored type-erased; defineTool checks each one against its own schema first.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTool = ToolDef<any>;

export const defineTool = <S extends z.ZodRawShape>(def: ToolDef<S>): AnyTool => def as AnyTool;

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
  admit?: { result?: AdmitResult; promise: Promise<AdmitResult>; alarmed?: boolean };
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
