/**
 * The guard pipeline, in the order of DESIGN §3. This is the only place the order is written:
 * cheapest refusals first, the side effect last.
 */
import { approval } from './approval.js';
import { audit } from './audit.js';
import { boundary } from './boundary.js';
import { sessionBudget } from './budget.js';
import { caps } from './caps.js';
import { compose } from './compose.js';
import type { GuardDeps } from './deps.js';
import { execute } from './execute.js';
import { idempotency } from './idempotency.js';
import { killSwitch } from './killswitch.js';
import { scope } from './scope.js';
import type { Call, Guard, GuardView, Handler } from './types.js';
import { validate } from './validate.js';

export function pipelineSteps(deps: GuardDeps): [string, Guard][] {
  return [
    ['boundary', boundary(deps)],
    ['kill_switch', killSwitch(deps)], // 1
    ['scope', scope()], // 2
    ['validate', validate(deps)], // 3
    ['session_budget', sessionBudget(deps)], // 4
    ['idempotency', idempotency(deps)], // 5
    ['caps', caps(deps)], // 6
    ['approval', approval(deps)], // 7
    ['audit', audit(deps)], // 9: intent before the side effect, outcome after
  ];
}

/** `onStep` lets a test observe the order guards are entered in. */
export function buildPipeline(deps: GuardDeps, guardView: (call: Call) => GuardView, onStep?: (name: string) => void): Handler {
  const steps = pipelineSteps(deps).map(([name, g]): Guard => (onStep ? (next) => g(async (c) => (onStep(name), next(c))) : g));
  const exec = execute(deps, guardView);
  const run: Handler = onStep ? async (c) => (onStep('execute'), exec(c)) : exec;
  return compose(...steps)(run);
}
