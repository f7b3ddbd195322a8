import { z } from 'zod';
import { GuardError } from '../../core/errors.js';
import { untrusted } from '../untrusted.js';
import { defineTool } from '../../core/tool.js';

export const requestStatus = defineTool({
  name: 'request_status',
  title: 'Check an approval request',
  description:
    'Reports a request returned as APPROVAL_PENDING: pending, approved, denied, expired, executing, succeeded or failed, with the decision, the result once it ran and, for installs, the job’s progress.',
  input: {
    request_id: z.string().regex(/^REQ-[A-Z0-9]{6,16}$/, { error: 'must be a request id like REQ-7K2M9QX4PD' }),
  },
  scope: 'any-write',
  polling: true,
  effect: 'read',
  tier: 'auto',
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  output: {
    request_id: z.string(),
    status: z.enum(['pending', 'approved', 'denied', 'expired', 'executing', 'succeeded', 'failed']),
    tool: z.string(),
    summary: z.string(),
    tier: z.string(),
    on_behalf_of: z.string().nullable(),
    decided_by: z.string().nullable(),
    note: z.string().nullable(),
    created_at: z.string(),
    expires_at: z.string(),
    /** The structured result of the run, as the tool returned it. */
    result: z.looseObject({}).optional(),
    job: z.object({ id: z.string(), state: z.string(), updated_at: z.string() }).optional(),
  },
  summary: (a) => `Check request ${a.request_id}`,
  async run(a, ctx) {
    const r = await ctx.approvals.get(a.request_id);
    // Security: a principal sees only its own requests; others' look like they do not exist.
    if (!r || r.principal !== ctx.principal.name) {
      throw new GuardError('NOT_FOUND', `No request ${a.request_id} for this agent.`, {
        next: 'Use the request_id from an APPROVAL_PENDING result.',
      });
    }
    const result = r.result
      ? (JSON.parse(r.result) as {
          content?: { type: string; text?: string }[];
          structuredContent?: Record<string, unknown>;
        })
      : undefined;
    const job =
      r.tool === 'software_install' && r.request_id
        ? await (ctx.backends.deploy.jobState ?? ctx.backends.deploy.findByRequest)
            .call(ctx.backends.deploy, r.request_id, { signal: ctx.signal })
            .catch(() => undefined)
        : undefined;
    // The summary carries the agent's arguments and the note an approver's words: both are fenced as data.
    const lines = [
      `${r.id}: ${r.status}`,
      untrusted(`request ${r.id}`, `Summary: ${r.summary}${r.note ? `\nApprover's note: ${r.note}` : ''}`),
      `tier ${r.tier}; requested ${new Date(r.created_at).toISOString()}${r.on_behalf_of ? ` on behalf of ${r.on_behalf_of}` : ''}; expires ${new Date(r.expires_at).toISOString()}`,
      r.decided_by ? `decided by ${r.decided_by} at ${new Date(r.decided_at ?? 0).toISOString()}` : 'no decision yet',
      ...(result?.content?.[0]?.text ? [`result: ${result.content[0].text}`] : []),
      ...(job
        ? [`install job ${job.id}: ${job.state}${job.error ? ` (${job.error})` : ''} (updated ${job.updatedAt})`]
        : []),
    ];
    return {
      text: lines.join('\n'),
      data: {
        request_id: r.id,
        status: r.status,
        tool: r.tool,
        summary: r.summary,
        tier: r.tier,
        // The human the request was made for (OAuth), or null when none was known.
        on_behalf_of: r.on_behalf_of,
        decided_by: r.decided_by,
        note: r.note,
        created_at: new Date(r.created_at).toISOString(),
        expires_at: new Date(r.expires_at).toISOString(),
        ...(result?.structuredContent ? { result: result.structuredContent } : {}),
        ...(job
          ? {
              job: {
                id: job.id,
                state: job.state,
                updated_at: job.updatedAt,
                ...(job.error ? { error: job.error } : {}),
              },
            }
          : {}),
      },
    };
  },
});
