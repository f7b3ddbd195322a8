/** Least privilege: a tool is visible and callable only with its scope, and only while policy enables it. */
import type { Policy } from '../policy/schema.js';
import type { ToolName, ToolPolicy } from '../core/policy.js';
import { GuardError } from '../core/errors.js';
import { defineTool, type AnyTool, type Principal } from '../core/tool.js';
import type { Call, Guard } from './types.js';

const unknownTools = new WeakSet<AnyTool>();

/**
 * A stand-in definition for a tools/call naming no tool: it goes through the pipeline like any call (so it spends
 * budget and extends the failure streak) and is refused by the scope step.
 */
export function unknownTool(name: string): AnyTool {
  const t = defineTool({
    name: name.slice(0, 100) as ToolName,
    title: 'unknown tool',
    description: '',
    input: {},
    scope: 'none',
    effect: 'read',
    tier: 'auto',
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    summary: () => `Call unknown tool "${name.slice(0, 100)}"`,
    run: () => Promise.reject(new GuardError('UNKNOWN_TOOL', `There is no tool named "${name.slice(0, 100)}".`)),
  });
  unknownTools.add(t);
  return t;
}
export const isUnknownTool = (t: AnyTool): boolean => unknownTools.has(t);

/** The policy an unknown tool is counted under: the task's defaults, nothing enabled. */
export const unknownToolPolicy = (policy: Policy): ToolPolicy => ({
  ...policy.tools.guard_status,
  enabled: true,
  mode: 'live',
  caps: [],
  maxIdenticalCalls: policy.task.maxIdenticalCalls,
  maxConsecutiveFailures: policy.task.maxConsecutiveFailures,
});

const WRITE_SCOPES = ['tickets:write', 'password:reset', 'software:install'] as const;

export function hasScope(tool: AnyTool, principal: Principal): boolean {
  if (tool.scope === 'none') return true;
  if (tool.scope === 'any-write') return principal.scopes.some((s) => (WRITE_SCOPES as readonly string[]).includes(s));
  return principal.scopes.includes(tool.scope);
}

/** What tools/list shows this principal. */
export const visibleTools = (tools: readonly AnyTool[], principal: Principal, policy: Policy): AnyTool[] =>
  tools.filter((t) => policy.tools[t.name].enabled && hasScope(t, principal));

/**
 * The scope decision, shared by the scope step and the re-check before an approved request runs: throws the
 * refusal, or returns when the principal may call this tool now.
 */
export function checkScope(call: Call): void {
  // Security: a name that is no tool is refused here, after the budget step has counted it.
  if (unknownTools.has(call.tool)) throw new GuardError('UNKNOWN_TOOL', `There is no tool named "${call.tool.name}".`);
  // Security: a tool switched off by policy is refused even if a client calls it by name.
  if (!call.toolPolicy.enabled) throw new GuardError('TOOL_DISABLED', `${call.tool.name} is disabled by policy.`);
  // Security: checked at call time too; hiding a tool from tools/list is not enough.
  if (!hasScope(call.tool, call.principal)) {
    throw new GuardError(
      'SCOPE_DENIED',
      `Principal ${call.principal.name} lacks scope ${call.tool.scope} for ${call.tool.name}.`,
      {
        details: { required_scope: call.tool.scope },
      },
    );
  }
}

export const scope = (): Guard => (next) =>
  async function scopeGuard(call) {
    checkScope(call);
    return next(call);
  };
