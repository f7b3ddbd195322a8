/**
 * The guard pipeline (DESIGN §3). This is the only place the order is written: cheapest refusals first, the side
 * effect last. Each step is named; `compose` makes the first one listed the outermost.
 *
 *   outcome        refusals become tool results, unexpected errors INTERNAL; metrics
 *   denial_audit   every call the audit step did not record (refusals, replays) gets one audit record
 *   kill_switch    engaged → KILL_SWITCH_ENGAGED, before anything else is looked at
 *   budget         every call counts: session and principal budgets, the loop breaker (before scope and validation)
 *   scope          unknown tool, disabled tool, missing scope
 *   validate       the input schema, then the tool's argument policy
 *   resume         2026-07-28 retries with a requestState: verified, the answer decides the request, it runs once
 *   idempotency    write tools: replay, in progress, conflict, recovery of interrupted requests
 *   caps           aggregate caps, reserved atomically
 *   approval       the human gates by tier; approved requests run through the steps after it
 *   audit          intent durable before the side effect, outcome after; wraps execute
 *   (execute)      the tool itself, with a timeout and the kill switch's abort signal
 */
import { approval } from './approval.js';
import { audit, auditDenials } from './audit.js';
import { boundary } from './boundary.js';
import { budget } from './budget.js';
import { caps } from './caps.js';
import { compose } from './compose.js';
import type { GuardDeps } from './deps.js';
import { execute } from './execute.js';
import { idempotency } from './idempotency.js';
import { killSwitch } from './killswitch.js';
import { scope } from './scope.js';
import type { Call, Guard, Handler } from './types.js';
import type { GuardView } from '../core/tool.js';
import { validate } from './validate.js';
import { resume } from './mrtr-gates.js';

export type StepName =
  | 'outcome'
  | 'denial_audit'
  | 'kill_switch'
  | 'budget'
  | 'scope'
  | 'validate'
  | 'resume'
  | 'idempotency'
  | 'caps'
  | 'approval'
  | 'audit';

/** `afterApproval` runs an approved request through the steps after approval (the resume step needs it). */
export function pipelineSteps(deps: GuardDeps, afterApproval: () => Handler): [StepName, Guard][] {
  return [
    ['outcome', boundary(deps)],
    ['denial_audit', auditDenials(deps)],
    ['kill_switch', killSwitch(deps)],
    ['budget', budget(deps)],
    ['scope', scope()],
    ['validate', validate(deps)],
    ['resume', resume(deps, afterApproval)],
    ['idempotency', idempotency(deps)],
    ['caps', caps(deps)],
    ['approval', approval(deps)],
    ['audit', audit(deps)],
  ];
}

/** The steps an approved request runs through once a human has said yes: those after `approval`, from the same list. */
export const AFTER_APPROVAL: readonly StepName[] = ['audit'];
/** What wraps a request the executor runs for a caller who has gone: refusals as values, denials audited. */
export const EXECUTOR_EDGE: readonly StepName[] = ['outcome', 'denial_audit'];

const observed = (name: string, g: Guard, onStep?: (name: string) => void): Guard =>
  onStep ? (next) => g(async (c) => (onStep(name), next(c))) : g;

/** Composes the named steps (in pipeline order) around `inner`. `onStep` lets a test observe the order. */
export function chain(
  deps: GuardDeps,
  inner: Handler,
  only?: readonly StepName[],
  onStep?: (name: string) => void,
): Handler {
  // An approved request resumed over MRTR runs through the steps after approval, around the same inner handler.
  let after: Handler | undefined;
  const afterApproval = () => (after ??= chain(deps, inner, AFTER_APPROVAL));
  const steps = pipelineSteps(deps, afterApproval)
    .filter(([name]) => !only || only.includes(name))
    .map(([name, g]) => observed(name, g, onStep));
  return compose(...steps)(inner);
}

export function buildPipeline(
  deps: GuardDeps,
  guardView: (call: Call) => GuardView,
  onStep?: (name: string) => void,
): Handler {
  const exec = execute(deps, guardView);
  return chain(deps, onStep ? async (c) => (onStep('execute'), exec(c)) : exec, undefined, onStep);
}
