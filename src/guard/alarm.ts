/** An alarm is said four ways: a warn log, an audit event, a metric, and an MCP log notification to the calling session. */
import type { GuardDeps } from './deps.js';
import type { Call } from './types.js';

export async function raiseAlarm(
  deps: Pick<GuardDeps, 'log' | 'audit' | 'metrics'>,
  call: Call | undefined,
  alarm: { kind: string; rule: string; message: string; detail?: Record<string, unknown> },
): Promise<void> {
  deps.metrics.alarms.inc({ kind: alarm.kind, rule: alarm.rule });
  deps.log.warn({ alarm: alarm.kind, rule: alarm.rule, trace_id: call?.traceId, ...alarm.detail }, alarm.message);
  await deps.audit
    .record({
      event: 'alarm',
      actor: call?.principal.name ?? 'system',
      onBehalfOf: call?.principal.onBehalfOf,
      traceId: call?.traceId,
      sessionId: call?.session?.id,
      taskId: call?.task.id,
      tool: call?.tool.name,
      code: alarm.kind,
      detail: { rule: alarm.rule, message: alarm.message, ...alarm.detail },
    })
    .catch((e: unknown) => deps.log.error({ err: e }, 'could not audit alarm'));
  const mcp = call?.mcp?.mcpReq;
  if (!mcp) return;
  const data = { alarm: alarm.kind, rule: alarm.rule, message: alarm.message, ...alarm.detail };
  // 2025-11-25: sent to the session as before. 2026-07-28: through the SDK's log, which sends it only when the
  // request asked for log messages (its `logLevel` envelope key). (MCP logging is deprecated in
  // 2026-07-28, and still the channel DESIGN §3 names for alarms.)
  await (
    call.client?.era === 'modern'
      ? mcp.log('warning', data, 'itguard')
      : mcp.notify({ method: 'notifications/message', params: { level: 'warning', logger: 'itguard', data } })
  ).catch(() => undefined);
}
