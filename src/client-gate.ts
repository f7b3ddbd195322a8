/**
 * How a human gate can reach the user behind the calling client: the one place that decides it (DESIGN §4).
 *
 *  - 2025-11-25 connections (`legacy`): server-initiated `elicitation/create`, pushed over the connection and tied
 *    to the call (`ctx.mcpReq.elicitInput` with the call's request id), in the modes the client declared at
 *    `initialize` (form, url).
 *  - 2026-07-28 connections (`modern`): the protocol has no server-to-client requests (`elicitInput` throws there),
 *    so for now such a client is treated as one that declared no elicitation: `confirm` escalates to an approver,
 *    `mfa` returns the out-of-band verification link, `approval` waits then answers APPROVAL_PENDING.
 *
 * Seam for MRTR: in-band prompts on 2026-07-28 will be `input_required` results the client answers by retrying the
 * call. They belong here, as another channel of `askChannel`, and only the gates that use a channel change.
 * Progress notifications go out on both eras (`ctx.mcpReq.notify`, related to the call).
 */
import type { ClientCapabilities, ElicitResult, ServerContext } from '@modelcontextprotocol/server';
import type { ClientGate, Era } from './guard/types.js';

/** How this client can be asked in band, if at all. */
export interface AskChannel {
  /** `push`: server-initiated elicitation (2025-11-25). `none`: no in-band prompt; the gates go out of band. */
  kind: 'push' | 'none';
  form: boolean;
  url: boolean;
}

export function askChannel(era: Era, caps: ClientCapabilities | undefined): AskChannel {
  // 2026-07-28 has no server-to-client requests; in-band prompts there wait for MRTR (see above).
  if (era === 'modern') return { kind: 'none', form: false, url: false };
  const form = !!caps?.elicitation?.form;
  const url = !!caps?.elicitation?.url;
  return { kind: form || url ? 'push' : 'none', form, url };
}

/** What the gates may ask of this client for this call (tied to its request), and how to send progress. */
export function clientGate(era: Era, caps: ClientCapabilities | undefined, ctx: ServerContext): ClientGate {
  const channel = askChannel(era, caps);
  const progressToken = ctx.mcpReq._meta?.progressToken;
  return {
    era,
    form: channel.form,
    url: channel.url,
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
