/**
 * Runs the tool with a timeout and an abort signal (client cancel, kill switch, timeout).
 * A GuardError from the tool is a refusal; anything else propagates to the boundary as INTERNAL.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { config } from '../config.js';
import type { GuardDeps } from './deps.js';
import { BackendError } from '../core/backend.js';
import { GuardError } from '../core/errors.js';
import { linkedSignal } from './signals.js';
import type { Call, Handler } from './types.js';
import type { GuardView, ToolContext, ToolOutput } from '../core/tool.js';

/**
 * Crash-test hook: ITGUARD_FAILPOINT=before-effect|after-effect makes a write call stall at that point so a
 * test can kill -9 the process there. Unset in production; read once.
 */
const FAILPOINT = config().failpoint;
async function failpoint(name: string, call: Call): Promise<void> {
  if (FAILPOINT === name && call.tool.effect === 'write') await new Promise((r) => setTimeout(r, 60_000));
}

/** Shadow mode: evaluated, gated and audited as if real; nothing runs, and the result says what would have. */
function shadowResult(call: Call): CallToolResult {
  const tier =
    call.state.shadowTier && call.state.shadowTier !== 'auto'
      ? ` after ${call.state.shadowTier === 'approval' ? 'an approver’s' : call.state.shadowTier} approval`
      : '';
  return {
    content: [
      {
        type: 'text',
        text: `[shadow mode] Would have done: ${call.tool.summary(call.args)}${tier}. Nothing was executed.`,
      },
    ],
    ...(call.tool.output
      ? {
          structuredContent: {
            shadow: { would_run: call.tool.summary(call.args), tier: call.state.shadowTier ?? 'auto' },
          },
        }
      : {}),
    _meta: {
      'itguard/trace_id': call.traceId,
      'itguard/shadow': { would_run: call.tool.summary(call.args), tier: call.state.shadowTier ?? 'auto' },
    },
  };
}

/** The abort reason the kill-switch watcher uses: calls still running or waiting end with KILL_SWITCH_ENGAGED. */
export class KillSwitchAbort extends Error {
  constructor() {
    super('kill switch engaged');
  }
}

export function execute(
  deps: Pick<GuardDeps, 'backends' | 'store' | 'now' | 'links'>,
  guardView: (call: Call) => Promise<GuardView>,
): Handler {
  return async function executeTool(call): Promise<CallToolResult> {
    if (call.toolPolicy.mode === 'shadow' && call.tool.effect === 'write') return shadowResult(call);
    const killable = !call.tool.servesWhileKilled;
    const linked = linkedSignal(killable ? [call.signal] : [], call.toolPolicy.timeoutMs);
    const signal = linked.signal;
    const run = (async () => {
      await failpoint('before-effect', call);
      // Links the tool mails (reset links) must point at a listening page: stdio starts its page after the transport.
      if (call.tool.effect === 'write') await deps.links.ready;
      // Security: a call aborted while it waited (kill switch, cancel) never starts its side effect, and the kill
      // switch is read again right before it (step 1 was earlier; a write waited for its audit intent since).
      // The check and the start time are one synchronous step.
      signal.throwIfAborted();
      if (killable && deps.store.killSwitch.state().engaged) {
        throw new GuardError(
          'KILL_SWITCH_ENGAGED',
          'IT engaged the kill switch before this call could run; nothing was done.',
        );
      }
      call.state.executedAt = deps.now();
      return call.tool.run(
        call.args,
        toolContext(deps, call, { idempotencyKey: call.idempotencyKey, signal, guardView: () => guardView(call) }),
      );
    })();
    run.catch(() => undefined); // if the abort wins the race, the run's own rejection is not unhandled
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = () =>
        reject(
          // details.outcome_unknown: if the effect had started, it may or may not have happened; a retry with
          // the same key asks the backend rather than assuming either.
          linked.timedOut()
            ? new BackendError(`${call.tool.name} timed out after ${call.toolPolicy.timeoutMs} ms.`, true, {
                outcome_unknown: true,
              })
            : signal.reason instanceof KillSwitchAbort
              ? new GuardError(
                  'KILL_SWITCH_ENGAGED',
                  `IT engaged the kill switch while ${call.tool.name} was running; it was aborted.`,
                  { details: { outcome_unknown: true } },
                )
              : new BackendError(`${call.tool.name} was aborted: ${String(signal.reason ?? 'cancelled')}.`, false, {
                  outcome_unknown: true,
                }),
        );
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    const out = await Promise.race([run, aborted]).finally(linked.dispose);
    await failpoint('after-effect', call);
    return toResult(out, call.traceId);
  };
}

/** A tool's output as the MCP result the pipeline returns (and stores for replay). */
export const toResult = (out: ToolOutput, traceId: string): CallToolResult => ({
  content: [{ type: 'text', text: out.text }],
  ...(out.data ? { structuredContent: out.data } : {}),
  _meta: { 'itguard/trace_id': traceId },
});

const NO_VIEW: GuardView = {
  killSwitch: { engaged: false, reason: '', changedAt: 0 },
  task: {},
  caps: [],
  budgets: [],
  loopBreaker: {},
};

/** What a tool's run() or recover() receives: everything arrives through it, nothing is imported. */
export function toolContext(
  deps: Pick<GuardDeps, 'backends' | 'store' | 'links'>,
  call: Call,
  o: { idempotencyKey: string | undefined; signal: AbortSignal; guardView?: () => Promise<GuardView> },
): ToolContext {
  return {
    backends: deps.backends,
    principal: call.principal,
    traceId: call.traceId,
    idempotencyKey: o.idempotencyKey,
    requestId: o.idempotencyKey ?? call.traceId,
    resolved: call.state.resolved,
    signal: o.signal,
    guardView: o.guardView ?? (() => Promise.resolve(NO_VIEW)),
    approvals: deps.store.approvals,
    linksBase: deps.links.base,
  };
}
