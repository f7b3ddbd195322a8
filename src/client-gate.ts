/**
 * How a human gate can reach the user behind the calling client: the one place that decides it (DESIGN §4).
 *
 *  - 2025-11-25 connections (`legacy`): server-initiated `elicitation/create`, pushed over the connection and tied
 *    to the call (`ctx.mcpReq.elicitInput` with the call's request id), in the modes the client declared at
 *    `initialize` (form, url).
 *  - 2026-07-28 connections (`modern`): the protocol has no server-to-client requests (`elicitInput` throws there).
 *    A request that declares elicitation (its per-request capabilities) is asked with `input_required` results
 *    (MRTR, src/guard/mrtr-gates.ts): the client retries the call with its answers and the signed requestState.
 *    A request that declares none is treated as such a client on 2025: `confirm` escalates to an approver, `mfa`
 *    returns the out-of-band verification link, `approval` waits then answers APPROVAL_PENDING.
 * Progress notifications go out on both eras (`ctx.mcpReq.notify`, related to the call).
 */
import type { ClientCapabilities, ElicitResult, ServerContext } from '@modelcontextprotocol/server';
import type { ClientGate, Era } from './guard/types.js';

/** How this client can be asked in band, if at all. */
export interface AskChannel {
  /**
   * `push`: server-initiated elicitation (2025-11-25). `mrtr`: `input_required` results the client answers by
   * retrying (2026-07-28). `none`: no in-band prompt; the gates go out of band.
   */
  kind: 'push' | 'mrtr' | 'none';
  form: boolean;
  url: boolean;
}

export function askChannel(era: Era, caps: ClientCapabilities | undefined): AskChannel {
  const form = !!caps?.elicitation?.form;
  const url = !!caps?.elicitation?.url;
  // 2026-07-28 has no server-to-client requests: in-band prompts are input_required results, in the modes this
  // request declared (the SDK refuses to send a mode the client did not declare; the gates never try).
  if (era === 'modern') return { kind: form || url ? 'mrtr' : 'none', form, url };
  return { kind: form || url ? 'push' : 'none', form, url };
}

/** What the gates may ask of this client for this call (tied to its request), and how to send progress. */
export function clientGate(era: Era, caps: ClientCapabilities | undefined, ctx: ServerContext): ClientGate {
  const channel = askChannel(era, caps);
  const progressToken = ctx.mcpReq._meta?.progressToken;
  const push = channel.kind === 'push';
  return {
    era,
    form: push && channel.form,
    url: push && channel.url,
    mrtr: channel.kind === 'mrtr' ? { form: channel.form, url: channel.url } : undefined,
    elicit(params, signal, timeoutMs): Promise<ElicitResult> {
      // Security: the gates only elicit in the modes the channel offers; anything else is refused, never sent.
      if (channel.kind !== 'push' || (params.mode === 'url' ? !channel.url : !channel.form))
        return Promise.reject(new Error(`this client cannot be asked in ${params.mode ?? 'form'} mode`));
      return ctx.mcpReq.elicitInput(params, { relatedRequestId: ctx.mcpReq.id, signal, timeout: timeoutMs });
    },
    async progress(progress, total, message) {
      if (progressToken === undefined) return;
      await ctx.mcpReq
        .notify({ method: 'notifications/progress', params: { progressToken, progress, total, message } })
        .catch(() => undefined);
    },
  };
}
