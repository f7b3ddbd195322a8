/**
 * The pipeline's outer edge: turns thrown GuardErrors into refusal results, unexpected exceptions into INTERNAL
 * (logged with stack and trace id, never leaked), audits every denial that did not reach the audit step, counts
 * consecutive failures for the loop breaker, and records metrics.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { audited } from './audit.js';
import type { GuardDeps } from './deps.js';
import { GuardError, errorCodeOf } from './errors.js';
import type { Guard } from './types.js';

const NOT_FAILURES = new Set(['KILL_SWITCH_ENGAGED', 'APPROVAL_PENDING', 'IN_PROGRESS']);

export const boundary =
  (deps: Pick<GuardDeps, 'audit' | 'log' | 'metrics'>): Guard =>
  (next) =>
    async function boundaryGuard(call) {
      const t0 = performance.now();
      let result: CallToolResult;
      try {
        result = await next(call);
      } catch (e) {
        if (e instanceof GuardError) {
          result = e.toToolResult(call.traceId);
        } else {
          deps.log.error({ err: e, trace_id: call.traceId, tool: call.tool.name }, 'unexpected error in tool call');
          result = new GuardError('INTERNAL', 'An unexpected error occurred; it has been logged.').toToolResult(call.traceId);
        }
      }
      const code = errorCodeOf(result);
      // Waiting is not failing: a paused system, a pending human or a running twin do not count toward the breaker.
      if (!result.isError) call.session.consecutiveFailures = 0;
      else if (!NOT_FAILURES.has(code ?? '')) call.session.consecutiveFailures += 1;
      if (!audited.has(call)) {
        // Denials are audited too; the refusal stands even if the audit write fails (it denies either way).
        const replay = result._meta?.['itguard/replay'] !== undefined;
        await deps.audit
          .record({
            event: replay ? 'call.replay' : 'call.denied',
            actor: call.principal.name,
            traceId: call.traceId,
            sessionId: call.session.id,
            tool: call.tool.name,
            args: call.args ?? call.rawArgs,
            outcome: replay ? 'replay' : 'refused',
            code,
            detail: replay ? (result._meta?.['itguard/replay'] as Record<string, unknown>) : undefined,
          })
          .catch((e: unknown) => deps.log.error({ err: e, trace_id: call.traceId }, 'could not audit a denial'));
      }
      const outcome = result._meta?.['itguard/replay'] ? 'replay' : !result.isError ? 'ok' : code === 'INTERNAL' || code === 'BACKEND_ERROR' ? 'error' : 'refused';
      deps.metrics.calls.inc({ tool: call.tool.name, outcome, code: code ?? '' });
      deps.metrics.latency.observe({ tool: call.tool.name }, (performance.now() - t0) / 1000);
      deps.log.debug({ trace_id: call.traceId, tool: call.tool.name, principal: call.principal.name, outcome, code }, 'tool call');
      return result;
    };
