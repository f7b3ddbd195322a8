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
      traceId: call?.traceId,
      sessionId: call?.session?.id,
      tool: call?.tool.name,
      code: alarm.kind,
      detail: { rule: alarm.rule, message: alarm.message, ...alarm.detail },
    })
    .catch((e: unknown) => deps.log.error({ err: e }, 'could not audit alarm'));
  // The SDK's log honours the client's level: logging/setLevel on 2025-11-25, the request's logLevel on 2026-07-28
  // (sent only when the request asks for log messages).
  await call?.mcp?.mcpReq
    // (MCP logging is deprecated in 2026-07-28, and still the channel DESIGN §3 names for alarms.)
    .log('warning', { alarm: alarm.kind, rule: alarm.rule, message: alarm.message, ...alarm.detail }, 'itguard')
    .catch(() => undefined);
}
