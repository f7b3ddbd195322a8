/**
 * The pipeline's outer edge: turns thrown GuardErrors into refusal results and unexpected exceptions into
 * INTERNAL (logged with stack and trace id, never leaked), and records metrics. Nothing escapes it as a throw:
 * a refusal is a tool result the model reads.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { GuardDeps } from './deps.js';
import { errorCodeOf, GuardError } from '../core/errors.js';
import { isUnknownTool } from './scope.js';
import type { Guard } from './types.js';

export const boundary =
  (deps: Pick<GuardDeps, 'log' | 'metrics'>): Guard =>
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
          result = new GuardError('INTERNAL', 'An unexpected error occurred; it has been logged.').toToolResult(
            call.traceId,
          );
        }
      }
      const code = errorCodeOf(result);
      const tool = isUnknownTool(call.tool) ? '(unknown)' : call.tool.name; // the name is the caller's: bounded label set
      const outcome = result._meta?.['itguard/replay']
        ? 'replay'
        : !result.isError
          ? 'ok'
          : code === 'INTERNAL' || code === 'BACKEND_ERROR'
            ? 'error'
            : 'refused';
      deps.metrics.calls.inc({ tool, outcome, code: code ?? '' });
      deps.metrics.latency.observe({ tool }, (performance.now() - t0) / 1000);
      // `code` is a redacted log path (TOTP codes): the refusal code is logged as error_code.
      deps.log.debug(
        { trace_id: call.traceId, tool, principal: call.principal.name, outcome, error_code: code },
        'tool call',
      );
      return result;
    };
