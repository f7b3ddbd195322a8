/**
 * A tool definition (data, DESIGN §2) and everything it is given: who calls (`Principal`), what its resolve step
 * finds (`Resolved`), the context of its run (`ToolContext`: the backends, the call's ids, the guards' view).
 * Tools, guards, the server and the HTTP pages all read these shapes.
 */
import type { ToolAnnotations } from '@modelcontextprotocol/server';
import type { z } from 'zod';
import type { Backends } from './backends.js';
import type { Scope, Tier, ToolName, ToolPolicy } from './policy.js';

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

/**
 * An approval request as request_status reads it: the fields it shows of a row of the approvals store
 * (the approvals port's `ApprovalRow`, src/store/ports/, which has these and more).
 */
export interface ApprovalRecord {
  id: string;
  tier: string;
  principal: string;
  on_behalf_of: string | null;
  tool: string;
  summary: string;
  request_id: string | null;
  status: string;
  created_at: number;
  expires_at: number;
  decided_by: string | null;
  decided_at: number | null;
  note: string | null;
  /** The stored CallToolResult of the run, as JSON. */
  result: string | null;
}

/** What a tool may read of the approvals store (`ApprovalsStore` is one): a request by its id. */
export interface ApprovalsView {
  get(id: string): ApprovalRecord | undefined | Promise<ApprovalRecord | undefined>;
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
  guardView: () => Promise<GuardView>;
  /** request_status reads approval requests (only the calling principal's). */
  approvals: ApprovalsView;
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
