/** Input validation with field-level messages, then the tool's argument policy (deny lists, allowlists). */
import { z } from 'zod';
import { formatIssues } from '../issues.js';
import type { GuardDeps } from './deps.js';
import { GuardError } from './errors.js';
import type { AnyTool, Call, Guard } from './types.js';

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
      // Security: argument policy (deny lists, directory checks) is decided before any budget, cap or prompt.
      const filled = checkArgumentPolicy(deps, call);
      if (filled) call.args = { ...call.args, ...filled };
      return next(call);
    };

/**
 * The tool's argument policy (deny lists, directory users live, denied groups, catalog and device rules): throws
 * the refusal, or returns defaults to fill in. Shared by the validate step and the re-check before an approved
 * request runs.
 */
export const checkArgumentPolicy = (deps: Pick<GuardDeps, 'backends'>, call: Call) =>
  call.tool.checkPolicy?.(call.args, { backends: deps.backends, toolPolicy: call.toolPolicy });
