/**
 * Idempotency for write tools. Key = the explicit idempotency_key, else one derived from the tool and the
 * action's canonical arguments (reason and idempotency_key excluded); keys are scoped to the principal. Inside
 * the tool's dedupe window the derived record also stands beside an explicit key's own, so an identical action
 * replays whichever key it came with, or none. Completed → the stored result is replayed (no side effect, no
 * cap, no approval). In flight → IN_PROGRESS. Same key, other arguments → IDEMPOTENCY_CONFLICT. A record left
 * by a crash is resolved by asking the backend about its request id — never by running the action blindly again.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { actionArgs, canonicalJson, sha256 } from '../canonical.js';
import type { BeginInput, IdemRow } from '../store/ports/index.js';
import { settledApproval } from './approval.js';
import { afterCall, write } from './units.js';
import type { GuardDeps } from './deps.js';
import { BackendError } from '../core/backend.js';
import { GuardError } from '../core/errors.js';
import { toolContext, toResult } from './execute.js';
import type { Call, Guard } from './types.js';

const EXPLICIT_TTL_MS = 24 * 3600_000;

function replayOf(row: Pick<IdemRow, 'result' | 'updated_at' | 'trace_id' | 'state'>, call: Call): CallToolResult {
  const stored = JSON.parse(row.result ?? '{}') as CallToolResult;
  const note = `[Replay: this request already ran at ${new Date(row.updated_at).toISOString()}; nothing was done again.]`;
  const content =
    stored.content?.map((c, i) => (i === 0 && c.type === 'text' ? { ...c, text: `${note}\n${c.text}` } : c)) ?? [];
  return {
    ...stored,
    content,
    _meta: {
      ...stored._meta,
      'itguard/trace_id': call.traceId,
      'itguard/replay': {
        original_trace_id: row.trace_id,
        completed_at: new Date(row.updated_at).toISOString(),
        state: row.state,
      },
    },
  };
}

/**
 * A replay of a tool whose effect goes on after the call (an install job) also says where it stands now; the
 * stored result is kept as it was. Best effort: when the backend cannot be asked, the stored result stands.
 */
async function withCurrent(deps: GuardDeps, call: Call, requestId: string, r: CallToolResult): Promise<CallToolResult> {
  if (!call.tool.current || r.isError) return r;
  const now = await call.tool
    .current(call.args, toolContext(deps, call, { idempotencyKey: requestId, signal: call.signal }))
    .catch(() => undefined);
  // Nothing newer (the same state as stored): the stored result says it already.
  const stored = r.structuredContent as Record<string, unknown> | undefined;
  if (!now || (now.data && stored && now.data.state === stored.state)) return r;
  const [first, ...rest] = r.content ?? [];
  const text = first?.type === 'text' ? `${first.text}\nNow: ${now.text}` : `Now: ${now.text}`;
  return {
    ...r,
    content: [{ type: 'text', text }, ...rest],
    ...(now.data ? { structuredContent: { ...(r.structuredContent ?? {}), ...now.data } } : {}),
  };
}

/** The idempotency begin of a write call: its key, the derived dedupe key, the lease and the windows. */
export function beginInput(
  deps: Pick<GuardDeps, 'policy' | 'now'>,
  call: Call,
): { input: BeginInput; explicit: string | undefined; leaseMs: number } {
  const explicit = typeof call.args.idempotency_key === 'string' ? call.args.idempotency_key : undefined;
  const argsSha = sha256(canonicalJson({ tool: call.tool.name, args: actionArgs(call.args) }));
  const windowMs = call.toolPolicy.dedupeWindowMs;
  const leaseMs = call.toolPolicy.timeoutMs + deps.policy.approvals.waitSeconds * 1000 + 30_000;
  const input: BeginInput = {
    principal: call.principal.name,
    key: explicit ? `k:${explicit}` : `d:${argsSha}`,
    explicit: !!explicit,
    tool: call.tool.name,
    argsSha,
    traceId: call.traceId,
    now: deps.now(),
    leaseMs,
    ttlMs: explicit ? Math.max(EXPLICIT_TTL_MS, windowMs) : windowMs,
    dedupeKey: explicit && windowMs > 0 ? `d:${argsSha}` : undefined,
    dedupeTtlMs: windowMs,
  };
  return { input, explicit, leaseMs };
}

export const idempotency =
  (deps: GuardDeps): Guard =>
  (next) =>
    async function idempotencyGuard(call) {
      if (call.tool.effect !== 'write') return next(call);
      const { input, explicit, leaseMs } = beginInput(deps, call);
      const principal = call.principal.name;
      // Begun in the call's admission unit (the admission step), or here when no admission planned it.
      const begun =
        (await call.state.units?.planned?.begin) ?? (await write(deps, (tx) => deps.store.idem.begin(tx, input)));

      let requestId: string;
      switch (begun.kind) {
        case 'parked': {
          // The action waits on (or ran through) a human approval: the approval module says which.
          const settled = await settledApproval(deps, begun.approvalId, begun.row.trace_id, call);
          const at = deps.now();
          await write(deps, (tx) =>
            deps.store.idem.finish(tx, principal, begun.row.request_id, settled.state, settled.result, at),
          );
          if (settled.denial) throw settled.denial;
          const replay = replayOf(
            {
              state: settled.state,
              result: JSON.stringify(settled.result),
              updated_at: settled.updatedAt,
              trace_id: begun.row.trace_id,
            },
            call,
          );
          return withCurrent(deps, call, begun.row.request_id, replay);
        }
        case 'conflict':
          // Security: a key names one action; other arguments under it are refused, never executed or replayed.
          throw new GuardError(
            'IDEMPOTENCY_CONFLICT',
            `idempotency_key "${explicit}" was already used for ${begun.row.tool} with other arguments.`,
            {
              details: { original_trace_id: begun.row.trace_id },
            },
          );
        case 'replay':
          return withCurrent(deps, call, begun.row.request_id, replayOf(begun.row, call));
        case 'in_progress':
          throw new GuardError('IN_PROGRESS', 'The same request is still being processed.', {
            details: { original_trace_id: begun.row.trace_id },
          });
        case 'orphan': {
          // Security: the earlier attempt died mid-flight; ask the backend before anything runs again.
          if (!call.tool.recover) {
            throw new BackendError(
              'An earlier attempt of this request was interrupted and its outcome cannot be checked; ask IT to verify.',
              false,
              {
                original_trace_id: begun.row.trace_id,
              },
            );
          }
          const found = await call.tool.recover(
            call.args,
            toolContext(deps, call, { idempotencyKey: begun.row.request_id, signal: call.signal }),
          );
          if (found) {
            const result = toResult(found, begun.row.trace_id);
            const at = deps.now();
            await write(deps, (tx) =>
              deps.store.idem.finish(tx, principal, begun.row.request_id, 'completed', result, at),
            );
            deps.log.info(
              { trace_id: call.traceId, original: begun.row.trace_id },
              'recovered an interrupted request from the backend',
            );
            return replayOf(
              { ...begun.row, state: 'completed', result: JSON.stringify(result), updated_at: deps.now() },
              call,
            );
          }
          const at = deps.now();
          const adopted = await write(deps, (tx) =>
            deps.store.idem.adopt(tx, principal, begun.row.request_id, call.traceId, at, leaseMs, begun.row.trace_id),
          );
          if (!adopted) {
            throw new GuardError('IN_PROGRESS', 'The same request is being recovered by another call.');
          }
          requestId = begun.row.request_id;
          break;
        }
        case 'new':
          requestId = begun.requestId;
      }

      call.idempotencyKey = requestId;
      call.state.requestId = requestId;
      let result: CallToolResult;
      try {
        result = await next(call);
      } catch (e) {
        // What the request's records become is written with the call's settlement.
        const approvalId = e instanceof GuardError && e.code === 'APPROVAL_PENDING' ? e.details.request_id : undefined;
        const now = deps.now();
        if (typeof approvalId === 'string') {
          const until = Date.parse(String(e instanceof GuardError ? e.details.expires_at : '')) || now + 86_400_000;
          void afterCall(deps, call, (tx) => deps.store.idem.park(tx, principal, requestId, approvalId, until, now));
        } else if (!call.state.executedAt) {
          void afterCall(deps, call, (tx) => deps.store.idem.free(tx, principal, requestId)); // nothing ran: the key is free for a retry
        } else if (e instanceof GuardError && !e.retryable && !e.details.outcome_unknown && e.code !== 'INTERNAL') {
          const failed = e.toToolResult(call.traceId);
          void afterCall(deps, call, (tx) => deps.store.idem.finish(tx, principal, requestId, 'failed', failed, now)); // a final answer from the backend
        } else {
          // The effect started and its outcome is unknown (timeout, abort, crash-like error). The record stays in
          // flight with its lease ended, so the next retry asks the backend about the same request id.
          void afterCall(deps, call, (tx) =>
            deps.store.idem.adopt(tx, principal, requestId, call.traceId, now, -1, call.traceId),
          );
        }
        throw e;
      }
      // In the call's settlement: committed with its outcome record (a crash before that leaves the record in flight,
      // and the next retry asks the backend, as for a crash right after the effect).
      const finishedAt = deps.now();
      void afterCall(deps, call, (tx) =>
        !result.isError && call.toolPolicy.mode !== 'shadow'
          ? deps.store.idem.finish(tx, principal, requestId, 'completed', result, finishedAt)
          : deps.store.idem.free(tx, principal, requestId),
      );
      return result;
    };
