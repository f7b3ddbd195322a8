/**
 * The guard pipeline (DESIGN §3). This is the only place the order is written: cheapest refusals first, the side
 * effect last. Each step is named; `compose` makes the first one listed the outermost.
 *
 *   outcome        refusals become tool results, unexpected errors INTERNAL; metrics
 *   units          the call's two units of work: opens them, commits the settlement as the call ends (outcome,
 *                  idempotency result, cap releases, budget settle; the denial or replay record of every call the
 *                  audit step did not record)
 *   kill_switch    engaged → KILL_SWITCH_ENGAGED, before anything else is looked at
 *   budget         every call counts: the task, user and principal bounds and the breakers, as the admission's first
 *                  operation (a call refused before admission counts in its settlement, and a spent budget or a
 *                  tripped breaker is then its answer, as if asked first)
 *   scope          unknown tool, disabled tool, missing scope
 *   validate       the input schema, then the tool's argument policy
 *   admission      one transaction before any side effect: the budget's admit, the idempotency begin, every cap
 *                  reservation and, for a write no human gate stands before, its audit intent
 *   resume         2026-07-28 retries with a requestState: verified, the answer decides the request, it runs once
 *   idempotency    write tools: replay, in progress, conflict, recovery of interrupted requests
 *   caps           aggregate caps, reserved atomically
 *   approval       the human gates by tier; approved requests run through the steps after it
 *   audit          intent durable before the side effect, outcome after; wraps execute
 *   (execute)      the tool itself, with a timeout and the kill switch's abort signal
 */
import { approval } from './approval.js';
import { audit } from './audit.js';
import { admission } from './admission.js';
import { units } from './units.js';
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
  | 'units'
  | 'kill_switch'
  | 'budget'
  | 'scope'
  | 'validate'
  | 'admission'
  | 'resume'
  | 'idempotency'
  | 'caps'
  | 'approval'
  | 'audit';

/** `afterApproval` runs an approved request through the steps after approval (the resume step needs it). */
export function pipelineSteps(deps: GuardDeps, afterApproval: () => Handler): [StepName, Guard][] {
  return [
    ['outcome', boundary(deps)],
    ['units', units(deps)],
    ['kill_switch', killSwitch(deps)],
    ['budget', budget(deps)],
    ['scope', scope()],
    ['validate', validate(deps)],
    ['admission', admission(deps)],
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
export const EXECUTOR_EDGE: readonly StepName[] = ['outcome', 'units'];

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
  guardView: (call: Call) => Promise<GuardView>,
  onStep?: (name: string) => void,
): Handler {
  const exec = execute(deps, guardView);
  return chain(deps, onStep ? async (c) => (onStep('execute'), exec(c)) : exec, undefined, onStep);
}
