/**
 * Runs approved requests whose caller is no longer waiting. Every serving process polls; claiming a request
 * (approved → executing) is one conditional UPDATE, so exactly one process runs it. The action goes through
 * the audit and execute steps with the stored arguments and the original request id (the backend's
 * idempotency key), under the kill switch like any call.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { nanoid } from 'nanoid';
import type { ApprovalRow } from '../store/approvals-store.js';
import { audit } from './audit.js';
import { boundary } from './boundary.js';
import { compose } from './compose.js';
import type { GuardDeps } from './deps.js';
import { GuardError } from './errors.js';
import { hasScope } from './scope.js';
import type { AnyTool, Call, Handler, Principal, SessionState } from './types.js';

export interface ExecutorDeps extends GuardDeps {
  tools: readonly AnyTool[];
  principal(name: string): Principal | undefined;
  killSignal(): AbortSignal;
}

export function startExecutor(deps: ExecutorDeps, exec: Handler, intervalMs = 500): () => void {
  const run = compose(boundary(deps), audit(deps))(exec);
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      if (deps.killSwitch.state().engaged) return; // approved requests wait for a resume
      for (const row of deps.approvals.approvedReady()) {
        if (!deps.approvals.claim(row.id)) continue;
        await runApproved(deps, run, row);
      }
    } catch (e) {
      deps.log.error({ err: e }, 'approval executor failed a pass');
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

async function runApproved(deps: ExecutorDeps, run: Handler, row: ApprovalRow): Promise<void> {
  const traceId = nanoid(16);
  const tool = deps.tools.find((t) => t.name === row.tool);
  const principal = deps.principal(row.principal);
  let result: CallToolResult;
  if (!tool || !principal || !hasScope(tool, principal) || !deps.policy.tools[tool.name].enabled) {
    // Security: policy changed since the request was made; the approval no longer authorises anything.
    result = new GuardError('SCOPE_DENIED', `${row.principal} may no longer run ${row.tool}; approved request ${row.id} was not executed.`).toToolResult(traceId);
  } else {
    const session: SessionState = { id: `executor:${row.id}`, transport: 'memory', startedAt: deps.now(), calls: 0, resultBytes: 0, identical: new Map(), consecutiveFailures: 0, tripped: undefined };
    const args = JSON.parse(row.args) as Record<string, unknown>;
    const call: Call = {
      tool,
      toolPolicy: deps.policy.tools[tool.name],
      rawArgs: args,
      args,
      principal,
      session,
      traceId,
      signal: deps.killSignal(),
      startedAt: deps.now(),
      idempotencyKey: row.request_id ?? undefined,
      executedAt: undefined,
      mcp: undefined,
      client: undefined,
    };
    await deps.audit.record({ event: 'approval.consumed', actor: principal.name, traceId, sessionId: session.id, tool: tool.name, detail: { request_id: row.id, decided_by: row.decided_by, by: 'executor' } });
    result = await run(call);
  }
  deps.approvals.finish(row.id, result.isError ? 'failed' : 'succeeded', result);
  deps.log.info({ request_id: row.id, tool: row.tool, trace_id: traceId, ok: !result.isError }, 'ran an approved request');
}
