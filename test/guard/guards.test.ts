import { setKillSwitch } from '../../src/guard/operator.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteApp as App } from '../../src/app.js';
import { boundary } from '../../src/guard/boundary.js';
import { budget } from '../../src/guard/budget.js';
import { admission } from '../../src/guard/admission.js';
import { units } from '../../src/guard/units.js';
import type { Handler } from '../../src/guard/types.js';
import { GuardError } from '../../src/core/errors.js';
import { killSwitch } from '../../src/guard/killswitch.js';
import { buildPipeline } from '../../src/guard/pipeline.js';
import { scope } from '../../src/guard/scope.js';
import { validate } from '../../src/guard/validate.js';
import { fakeCall, nextSpy } from '../helpers/fake-call.js';
import { testApp } from '../helpers/harness.js';

let app: App;
beforeAll(() => {
  app = testApp();
});
afterAll(() => app.close());

const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as GuardError;
  }
  throw new Error('expected a refusal');
};

describe('kill switch guard', () => {
  it('passes when off, refuses without calling next when engaged', async () => {
    const next = nextSpy();
    await killSwitch(app)(next)(fakeCall(app, 'kb_search', { query: 'x' }));
    expect(next).toHaveBeenCalledTimes(1);
    await setKillSwitch(app, true, 'unit test', 't');
    const e = await refusal(killSwitch(app)(next)(fakeCall(app, 'kb_search', { query: 'x' })));
    expect(e.code).toBe('KILL_SWITCH_ENGAGED');
    expect(next).toHaveBeenCalledTimes(1);
    await setKillSwitch(app, false, 'unit test over', 't');
  });

  it('fails closed when the state cannot be read', async () => {
    const next = nextSpy();
    const broken = {
      store: {
        killSwitch: {
          state: () => {
            throw new Error('database is locked');
          },
        },
      },
    } as unknown as App;
    await expect(killSwitch(broken)(next)(fakeCall(app, 'kb_search', { query: 'x' }))).rejects.toThrow(/locked/);
    expect(next).not.toHaveBeenCalled();
  });
});

describe('scope guard', () => {
  it('refuses a tool outside the principal’s scopes', async () => {
    const next = nextSpy();
    const e = await refusal(scope()(next)(fakeCall(app, 'ticket_create', {}, 'kb-reader')));
    expect(e.code).toBe('SCOPE_DENIED');
    expect(next).not.toHaveBeenCalled();
    await scope()(next)(fakeCall(app, 'ticket_get', {}, 'kb-reader'));
    expect(next).toHaveBeenCalledTimes(1);
  });

  it('refuses a tool disabled by policy', async () => {
    const next = nextSpy();
    const call = fakeCall(app, 'kb_search', {});
    call.toolPolicy = { ...call.toolPolicy, enabled: false };
    expect((await refusal(scope()(next)(call))).code).toBe('TOOL_DISABLED');
  });
});

describe('validate guard', () => {
  it('parses, applies defaults, and names every bad field', async () => {
    const next = nextSpy();
    const call = fakeCall(app, 'kb_search', { query: 'vpn' });
    await validate(app)(next)(call);
    expect(call.args).toEqual({ query: 'vpn', limit: 5 });
    const e = await refusal(
      validate(app)(next)(fakeCall(app, 'ticket_create', { summary: '', requester: 'Bad User', priority: 'meh' })),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details.fields).toEqual(
      expect.arrayContaining([
        'summary: must not be empty',
        'requester: must be a directory username like jdoe',
        'reason: required',
      ]),
    );
    expect((e.details.fields as string[]).some((f) => f.startsWith('priority: must be one of'))).toBe(true);
  });

  it('rejects non-object arguments', async () => {
    const e = await refusal(
      validate(app)(nextSpy())(fakeCall(app, 'kb_search', 'vpn' as unknown as Record<string, unknown>)),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
  });
});

describe('task budget and loop breaker', () => {
  // The budget step adds the admit to the call's admission, which the admission step commits, inside the units step.
  const counted = (next: Handler) => units(app)(budget(app)(admission(app)(next)));
  it('refuses at max_calls', async () => {
    const next = nextSpy();
    const call = () => fakeCall(app, 'kb_search', { query: `q${Math.random()}` }, 'helpdesk-agent', { session });
    const session = fakeCall(app, 'kb_search', {}).session;
    for (let i = 0; i < app.policy.task.maxCalls; i++) await counted(next)(call());
    const e = await refusal(counted(next)(call()));
    expect(e.code).toBe('BUDGET_EXHAUSTED');
    expect(next).toHaveBeenCalledTimes(app.policy.task.maxCalls);
  });

  it('trips on more than max_identical_calls identical calls, and stays tripped', async () => {
    const next = nextSpy();
    const first = fakeCall(app, 'kb_search', { query: 'same' });
    const again = () => fakeCall(app, 'kb_search', { query: 'same' }, 'helpdesk-agent', { session: first.session });
    await counted(next)(first);
    await counted(next)(again());
    await counted(next)(again());
    expect((await refusal(counted(next)(again()))).code).toBe('LOOP_DETECTED');
    const other = fakeCall(app, 'kb_search', { query: 'different' }, 'helpdesk-agent', { session: first.session });
    expect((await refusal(counted(next)(other))).code).toBe('LOOP_DETECTED');
    expect(next).toHaveBeenCalledTimes(3);
  });

  it('trips after more than max_consecutive_failures failures in a row (counted by the budget step)', async () => {
    const failing = async () => {
      throw new GuardError('NOT_FOUND', 'nope');
    };
    const session = fakeCall(app, 'kb_search', {}).session;
    const guarded = boundary(app)(counted(failing));
    for (let i = 0; i <= app.policy.task.maxConsecutiveFailures; i++) {
      const r = await guarded(fakeCall(app, 'kb_get_article', { id: `KB-${i}` }, 'helpdesk-agent', { session }));
      expect((r._meta!['itguard/error'] as { code: string }).code).toBe('NOT_FOUND');
    }
    const r = await guarded(fakeCall(app, 'kb_get_article', { id: 'KB-99' }, 'helpdesk-agent', { session }));
    expect((r._meta!['itguard/error'] as { code: string }).code).toBe('LOOP_DETECTED');
    expect(app.sqlite.auditStore.tail(5).some((x) => x.event === 'alarm' && x.code === 'LOOP_DETECTED')).toBe(true);
  });
});

describe('a spent or tripped task is refused before scope and validation', () => {
  it('a tripped task calling with invalid arguments: LOOP_DETECTED, and no step after the budget ran', async () => {
    const next = nextSpy();
    const first = fakeCall(app, 'kb_search', { query: 'again and again' });
    const again = () =>
      fakeCall(app, 'kb_search', { query: 'again and again' }, 'helpdesk-agent', { session: first.session });
    const counted = (n: Handler) => units(app)(budget(app)(admission(app)(n)));
    for (let i = 0; i <= app.policy.tools.kb_search.maxIdenticalCalls; i++)
      await counted(next)(i ? again() : first).catch(() => undefined);
    const events: string[] = [];
    const handler = buildPipeline(
      app,
      async () => ({
        killSwitch: { engaged: false, reason: '', changedAt: 0 },
        task: {},
        caps: [],
        budgets: [],
        loopBreaker: {},
      }),
      (n) => events.push(n),
    );
    const r = await handler(
      fakeCall(app, 'ticket_create', { summary: '' }, 'helpdesk-agent', { session: first.session }),
    );
    expect((r._meta!['itguard/error'] as { code: string }).code).toBe('LOOP_DETECTED');
    // Each step is recorded as it hands the call on: the budget refused, so neither scope nor validate saw it.
    expect(events).toEqual(['outcome', 'units', 'kill_switch']);
  });
});

describe('boundary', () => {
  it('turns an unexpected exception into INTERNAL with the trace id only', async () => {
    const r = await boundary(app)(async () => {
      throw new Error('secret internals: /etc/passwd');
    })(fakeCall(app, 'kb_search', { query: 'x' }));
    expect(r.isError).toBe(true);
    expect(JSON.stringify(r)).not.toContain('secret internals');
    expect(r._meta!['itguard/error']).toMatchObject({ code: 'INTERNAL', trace_id: 'trace-test' });
  });
});

describe('pipeline', () => {
  it('runs the named steps in the order of DESIGN §3: budget before scope and validation, audit wrapping execute', async () => {
    const events: string[] = [];
    const handler = buildPipeline(
      app,
      async () => ({
        killSwitch: { engaged: false, reason: '', changedAt: 0 },
        task: {},
        caps: [],
        budgets: [],
        loopBreaker: {},
      }),
      (n) => events.push(n),
    );
    const r = await handler(fakeCall(app, 'kb_search', { query: 'vpn' }));
    expect(r.isError).toBeFalsy();
    expect(events).toEqual([
      'outcome',
      'units',
      'kill_switch',
      'budget',
      'scope',
      'validate',
      'admission',
      'resume',
      'idempotency',
      'caps',
      'approval',
      'audit',
      'execute',
    ]);
  });

  it('stops at the first refusing guard', async () => {
    const events: string[] = [];
    const handler = buildPipeline(
      app,
      async () => ({
        killSwitch: { engaged: false, reason: '', changedAt: 0 },
        task: {},
        caps: [],
        budgets: [],
        loopBreaker: {},
      }),
      (n) => events.push(n),
    );
    await handler(fakeCall(app, 'ticket_create', { summary: 'x' }, 'kb-reader'));
    expect(events).toEqual(['outcome', 'units', 'kill_switch', 'budget']); // scope refused: nothing after it ran
  });
});
