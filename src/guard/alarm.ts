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
      sessionId: call?.session.id,
      tool: call?.tool.name,
      code: alarm.kind,
      detail: { rule: alarm.rule, message: alarm.message, ...alarm.detail },
    })
    .catch((e: unknown) => deps.log.error({ err: e }, 'could not audit alarm'));
  await call?.mcp
    ?.sendNotification({
      method: 'notifications/message',
      params: {
        level: 'warning',
        logger: 'itguard',
        data: { alarm: alarm.kind, rule: alarm.rule, message: alarm.message, ...alarm.detail },
      },
    })
    .catch(() => undefined);
}
