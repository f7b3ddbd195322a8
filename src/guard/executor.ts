/**
 * Runs approved requests whose caller is no longer waiting, and recovers requests whose runner died. Every
 * serving process polls; claiming a request (approved → executing, with this process as runner) is one
 * conditional UPDATE, so exactly one process runs it. The action goes through `runApproved` — the same path a
 * waiting caller takes: policy re-checked, then the steps after approval (audit, execute) with the stored
 * arguments and the original request id (the backend's idempotency key), under the kill switch like any call.
 *
 * A request left `executing` by a crashed runner is recovered like an unknown-outcome write: the backend is
 * asked about its request id; found → recorded as succeeded; provably never started → run once; no way to ask
 * → failed with the outcome unknown, for IT to check. Nothing is run twice on a guess.
 */
import { write } from './units.js';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { newTraceId } from '../trace-id.js';
import type { ToolName } from '../core/policy.js';
import type { ApprovalRow } from '../store/ports/index.js';
import type { GuardDeps } from './deps.js';
import { BackendError } from '../core/backend.js';
import { GuardError } from '../core/errors.js';
import { toolContext, toResult } from './execute.js';
import { runApproved, runLeaseMs } from './gate-requests.js';
import { chain, AFTER_APPROVAL, EXECUTOR_EDGE } from './pipeline.js';
import { newCallState, type Call, type Handler, type SessionState } from './types.js';
import type { AnyTool, Principal } from '../core/tool.js';

export interface ExecutorDeps extends GuardDeps {
  tools: readonly AnyTool[];
  principal(name: string): Principal | undefined;
  killSignal(): AbortSignal;
}

export interface Executor {
  stop(): void;
  /**
   * One pass now, after the pass in progress (if any), resolving when it is done: whatever is ready when it is called
   * has been run (or is left waiting on the kill switch) by then. Tests use it to see that something did not run
   * without sleeping for some ticks.
   */
  pass(): Promise<void>;
}

/** `exec` is the tool execution step; the executor wraps it in the pipeline's own steps. */
export function startExecutor(deps: ExecutorDeps, exec: Handler, intervalMs = 500): Executor {
  const afterApproval = chain(deps, exec, AFTER_APPROVAL);
  const run = async () => {
    try {
      if (deps.store.killSwitch.state().engaged) return; // approved requests wait for a resume
      for (const row of await deps.store.approvals.orphanedExecuting(deps.now())) {
        if (!(await write(deps, (tx) => deps.store.approvals.reclaim(tx, row, deps.now(), leaseFor(deps, row)))))
          continue;
        await recoverOrphan(deps, afterApproval, row);
      }
      for (const row of await deps.store.approvals.approvedReady()) {
        if (!(await write(deps, (tx) => deps.store.approvals.claim(tx, row.id, deps.now(), leaseFor(deps, row)))))
          continue;
        await runOne(deps, afterApproval, row);
      }
    } catch (e) {
      deps.log.error({ err: e }, 'approval executor failed a pass');
    }
  };
  /** The pass in progress; a timer tick while one runs is skipped. */
  let running: Promise<void> | undefined;
  const tick = (): Promise<void> => {
    if (running) return running;
    const p = run().finally(() => {
      if (running === p) running = undefined;
    });
    running = p;
    return p;
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    async pass() {
      while (running) await running;
      await tick();
    },
  };
}

/** How long this process may hold a claimed request: its tool's timeout and a margin. */
const leaseFor = (deps: ExecutorDeps, row: ApprovalRow): number =>
  runLeaseMs(deps.tools.some((t) => t.name === row.tool) ? deps.policy.tools[row.tool as ToolName].timeoutMs : 30_000);

/** The call an approved request runs as, or a refusal when the tool or principal no longer exists. */
function callFor(deps: ExecutorDeps, row: ApprovalRow): Call | GuardError {
  const tool = deps.tools.find((t) => t.name === row.tool);
  const named = deps.principal(row.principal);
  // The request runs for the human it was made for: every audit record of the run says so.
  const principal = named && {
    ...named,
    onBehalfOf: row.on_behalf_of ?? undefined,
    onBehalfOfId: row.on_behalf_of_id ?? undefined,
  };
  // Security: policy changed since the request was made; the approval no longer authorises anything.
  if (!tool || !principal)
    return new GuardError(
      'SCOPE_DENIED',
      `${row.principal} may no longer run ${row.tool}; approved request ${row.id} was not executed.`,
    );
  const session: SessionState = { id: `executor:${row.id}`, transport: 'memory', startedAt: deps.now() };
  const args = JSON.parse(row.args) as Record<string, unknown>;
  return {
    tool,
    toolPolicy: deps.policy.tools[tool.name],
    rawArgs: args,
    args,
    principal,
    session,
    // The run is part of the task the request was made in (its trace reads on after the approval).
    task: row.task_id ? { source: 'meta', id: row.task_id } : { source: 'principal', id: `principal:${row.principal}` },
    traceId: newTraceId(),
    signal: deps.killSignal(),
    startedAt: deps.now(),
    idempotencyKey: row.request_id ?? undefined,
    state: { ...newCallState(), validated: true },
    mcp: undefined,
    client: undefined,
  };
}

async function runOne(deps: ExecutorDeps, afterApproval: Handler, row: ApprovalRow): Promise<void> {
  const call = callFor(deps, row);
  if (call instanceof GuardError) {
    const failed = call.toToolResult(newTraceId());
    await write(deps, (tx) => deps.store.approvals.finish(tx, row.id, 'failed', failed, { nothingRan: true }));
    return;
  }
  const edge = chain(deps, (c) => runApproved(deps, row, c, afterApproval), EXECUTOR_EDGE);
  const result = await edge(call);
  deps.log.info(
    { request_id: row.id, tool: row.tool, trace_id: call.traceId, ok: !result.isError },
    'ran an approved request',
  );
}

async function recoverOrphan(deps: ExecutorDeps, afterApproval: Handler, row: ApprovalRow): Promise<void> {
  const call = callFor(deps, row);
  if (call instanceof GuardError) {
    const failed = call.toToolResult(newTraceId());
    await write(deps, (tx) => deps.store.approvals.finish(tx, row.id, 'failed', failed));
    return;
  }
  const note = (outcome: string) =>
    deps.audit.record({
      event: 'approval.recovered',
      actor: 'system',
      onBehalfOf: call.principal.onBehalfOf,
      traceId: call.traceId,
      sessionId: call.session?.id,
      taskId: call.task.id,
      tool: row.tool,
      detail: { request_id: row.id, outcome, runner: row.runner },
    });
  // Security: the runner died mid-action; ask the backend before anything runs again.
  if (!call.tool.recover || !row.request_id) {
    const unknown = new BackendError(
      `Approved request ${row.id} was interrupted and its outcome cannot be checked; ask IT to verify before retrying.`,
      false,
      { outcome_unknown: true },
    );
    await note('unknown');
    const failed = unknown.toToolResult(call.traceId);
    await write(deps, (tx) => deps.store.approvals.finish(tx, row.id, 'failed', failed));
    return;
  }
  let found;
  try {
    found = await call.tool.recover(
      call.args,
      toolContext(deps, call, {
        idempotencyKey: row.request_id,
        signal: AbortSignal.any([call.signal, AbortSignal.timeout(call.toolPolicy.timeoutMs)]),
      }),
    );
  } catch (e) {
    deps.log.warn(
      { err: e, request_id: row.id },
      'could not ask the backend about an interrupted approved request; will retry',
    );
    deps.store.approvals.letGo(row.id); // still executing; once the lease runs out a later pass (here or elsewhere) asks again
    return;
  }
  if (found) {
    const result: CallToolResult = toResult(found, call.traceId);
    await note('found');
    await write(deps, (tx) => deps.store.approvals.finish(tx, row.id, 'succeeded', result));
    deps.log.info({ request_id: row.id }, 'recovered an interrupted approved request from the backend');
    return;
  }
  await note('never_started');
  const edge = chain(deps, (c) => runApproved(deps, row, c, afterApproval), EXECUTOR_EDGE);
  await edge(call);
}
