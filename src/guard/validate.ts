/** Input validation with field-level messages, then the tool's argument policy (deny lists, allowlists). */
import { z } from 'zod';
import { formatIssues } from '../issues.js';
import type { GuardDeps } from './deps.js';
import { GuardError } from '../core/errors.js';
import { linkedSignal } from './signals.js';
import type { AnyTool } from '../core/tool.js';
import type { Call, Guard } from './types.js';

const schemas = new WeakMap<AnyTool, z.ZodType>();
/** The strict object schema of a tool's input (unknown fields are errors, not silently dropped). */
export function inputSchema(tool: AnyTool): z.ZodType {
  let s = schemas.get(tool);
  if (!s) {
    s = z.strictObject(tool.input);
    schemas.set(tool, s);
  }
  return s;
}

export const validate =
  (deps: Pick<GuardDeps, 'backends'>): Guard =>
  (next) =>
    async function validateGuard(call) {
      const parsed = inputSchema(call.tool).safeParse(call.rawArgs ?? {});
      if (!parsed.success) {
        const problems = formatIssues(parsed.error.issues);
        // Security: nothing runs on arguments that do not match the declared schema.
        throw new GuardError('INVALID_ARGUMENT', `Invalid arguments for ${call.tool.name}: ${problems.join('; ')}.`, {
          details: { fields: problems },
        });
      }
      call.args = parsed.data as Record<string, unknown>;
      call.state.validated = true;
      // Security: argument policy (deny lists, directory checks) is decided before any cap or prompt.
      await resolveCall(deps, call);
      return next(call);
    };

/**
 * The tool's resolve step: its one look at the backends (directory users live, denied groups, allowed projects,
 * catalog and device rules), filling defaults into the arguments and the facts every later guard reads into
 * `call.state.resolved`. Shared by the validate step and the re-check before an approved request runs. A backend
 * that cannot answer refuses the call (BACKEND_ERROR): a guard that cannot decide denies.
 */
export async function resolveCall(deps: Pick<GuardDeps, 'backends'>, call: Call): Promise<void> {
  if (!call.tool.resolve) return;
  const linked = linkedSignal([call.signal], call.toolPolicy.timeoutMs);
  let r;
  try {
    r = await call.tool.resolve(call.args, {
      backends: deps.backends,
      toolPolicy: call.toolPolicy,
      signal: linked.signal,
    });
  } finally {
    linked.dispose();
  }
  if (r?.args) call.args = { ...call.args, ...r.args };
  call.state.resolved = r?.resolved ?? {};
}
