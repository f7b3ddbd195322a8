/**
 * The policy file's schema (DESIGN §8): snake_case YAML in, validated by zod with unknown keys refused,
 * mapped to the camelCase `Policy` the rest of the code reads, then frozen.
 */
import { z } from 'zod';
import { authSchema, checkAuthPrincipals, toAuthPolicy, type AuthPolicy } from './auth.js';
import {
  cloudIssues,
  deploySchema,
  factorsSchema,
  kbSchema,
  oktaDirectorySchema,
  toDeploy,
  toFactors,
  toKb,
  toOktaDirectory,
  type DeployPolicy,
  type FactorsPolicy,
  type KbPolicy,
  type OktaDirectoryPolicy,
} from './cloud-backends.js';
import { checkNotify, notifySchema, toNotifyPolicy, type NotifyPolicy } from './notify.js';
import { SCOPES, TIERS, TOOL_NAMES, type Scope, type ToolName, type ToolPolicy } from '../core/policy.js';

const posInt = z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' });

/*
 * Upper bounds. A value past these is a typo, not a deployment, and some would break at runtime rather than at
 * start: a timer past 2^31-1 ms fires after 1 ms, a Date past 8.64e15 ms is Invalid and throws on toISOString,
 * and every cap rule of a tool is checked on each of its calls.
 */
export const LIMITS = {
  /** Per tool call: AbortSignal.timeout takes at most 2,147,483,647 ms (~24.8 days); a call that runs 10 minutes is hung. */
  timeout: '10m',
  /** How long a write is remembered for retries; the idempotency table keeps each key that long. */
  dedupeWindow: '30d',
  /** A gate request left open for a year is an abandoned one. */
  expireHours: 8760,
  /** A task is one conversation or job; a day bounds it and keeps max_minutes * 60,000 a small number of ms. */
  taskMinutes: 1440,
  /**
   * Counters (calls, identical calls, failures in a row) and result bytes: overflow only matters past 2^53, so these
   * are set far above any real session (`itguard drill` and the benchmarks raise them to 1e8-1e11).
   */
  count: 1e9,
  resultBytes: 1e12,
  sessionsPerPrincipal: 1000,
  /** Cap and budget limits: far past any real quota, and sums stay exact integers in a double and in SQLite. */
  ruleLimit: 1e12,
  capRulesPerTool: 32,
  budgetRules: 64,
  principals: 1000,
  listItems: 256,
} as const;

const count = (max: number, why: string) => posInt.max(max, { error: `must be at most ${max} (${why})` });

const UNIT_MS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 } as const;
const toMs = (s: string): number => Number(s.slice(0, -1)) * UNIT_MS[s.slice(-1) as keyof typeof UNIT_MS];

/** A duration like 30s, 15m, 2h or 1d, in ms; both bounds are written as durations so the message reads like the file. */
const duration = (min: string, max: string, why: string) =>
  z
    .string()
    .regex(/^\d+(s|m|h|d)$/, { error: 'expected a duration like 30s, 15m, 2h or 1d' })
    .transform((s, ctx) => {
      const ms = toMs(s);
      if (ms < toMs(min)) ctx.issues.push({ code: 'custom', message: `must be at least ${min}`, input: s });
      else if (ms > toMs(max))
        ctx.issues.push({ code: 'custom', message: `must be at most ${max} (${why})`, input: s });
      return ms;
    });

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const NAME_RULE = 'expected a lowercase name of [a-z0-9._-]';
const name = z.string().regex(NAME, { error: NAME_RULE });

/**
 * Names every JavaScript object already has (constructor, __proto__, toString, ...). As a key of a plain object they
 * would find a built-in instead of nothing: `principals["constructor"]` is truthy. Refused as policy names, and
 * the parsed records are null-prototype objects besides.
 */
const RESERVED = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);
export const isReservedName = (s: string): boolean => RESERVED.has(s);

/**
 * Checks the keys of a YAML mapping before zod's record sees them: zod drops a `__proto__` key silently, and its own
 * key errors read "Invalid key in record". `what` names a key in the messages ("principal").
 */
function checkKeys(what: string, max: number, pattern: RegExp | undefined) {
  return (v: unknown, ctx: z.RefinementCtx): unknown => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return v;
    const keys = Object.keys(v);
    if (keys.length > max)
      ctx.addIssue({ code: 'custom', message: `must have at most ${max} ${what}s`, input: keys.length });
    for (const k of keys) {
      if (RESERVED.has(k))
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: `"${k}" is a name every JavaScript object already has; choose another ${what} name`,
          input: k,
        });
      else if (pattern && !pattern.test(k)) ctx.addIssue({ code: 'custom', path: [k], message: NAME_RULE, input: k });
    }
    return v;
  };
}

const ruleNumber = z
  .number({ error: 'expected a positive number' })
  .positive({ error: 'expected a positive number' })
  .max(LIMITS.ruleLimit, {
    error: `must be at most ${LIMITS.ruleLimit.toExponential()} (a limit past that is a typo)`,
  });
const ruleInt = count(LIMITS.ruleLimit, 'a limit past that is a typo');

const capRule = z
  .strictObject({
    name,
    window: z.enum(['hour', 'day']),
    // `session` is the earlier name of `task` (read as task; `policy check` warns).
    per: z.enum(['principal', 'user', 'task', 'target', 'requester', 'session']).optional(),
    measure: z.enum(['calls', 'cost_usd']).default('calls'),
    limit: ruleNumber,
    alarm_at: ruleNumber.optional(),
  })
  .check((ctx) => {
    const r = ctx.value;
    if (r.measure === 'calls' && !Number.isInteger(r.limit)) {
      ctx.issues.push({ code: 'custom', path: ['limit'], message: 'expected a positive integer', input: r.limit });
    }
    if (r.alarm_at !== undefined && r.alarm_at > r.limit) {
      ctx.issues.push({ code: 'custom', path: ['alarm_at'], message: 'must not exceed limit', input: r.alarm_at });
    }
  });

/** A windowed budget rule per principal, user or task: every call counts, read or write, refused or not (DESIGN §3 step 4). */
const budgetRule = z
  .strictObject({
    name,
    window: z.enum(['hour', 'day']),
    // `session` is the earlier name of `task` (read as task; `policy check` warns).
    per: z.enum(['principal', 'user', 'task', 'session']).default('principal'),
    measure: z.enum(['calls', 'failures', 'result_bytes']).default('calls'),
    limit: ruleInt,
    alarm_at: ruleInt.optional(),
    tools: z.array(z.enum(TOOL_NAMES)).min(1).max(LIMITS.listItems).optional(),
  })
  .check((ctx) => {
    const r = ctx.value;
    if (r.alarm_at !== undefined && r.alarm_at > r.limit) {
      ctx.issues.push({ code: 'custom', path: ['alarm_at'], message: 'must not exceed limit', input: r.alarm_at });
    }
  });

/**
 * The defaults DESIGN §8 names, sized for the seed's deployment (docs/policy.md has the arithmetic): the fleet
 * ceilings at about 3x the expected peak hour of one agent principal, and one person's calls at about 10x a busy
 * person's hour.
 */
const DEFAULT_BUDGETS = [
  { name: 'fleet-calls-per-hour', window: 'hour', per: 'principal', measure: 'calls', limit: 10_000, alarm_at: 4000 },
  {
    name: 'fleet-failures-per-hour',
    window: 'hour',
    per: 'principal',
    measure: 'failures',
    limit: 2000,
    alarm_at: 500,
  },
  { name: 'user-calls-per-hour', window: 'hour', per: 'user', measure: 'calls', limit: 200, alarm_at: 60 },
] as const;

export const TASK_SOURCES = ['meta', 'session', 'user'] as const;
export type TaskSource = (typeof TASK_SOURCES)[number];

/** The per-task bounds (DESIGN §3 step 4, §8 `task:`); the same keys were once `session:`, which is still read. */
const TASK_BOUND_KEYS = {
  max_calls: count(LIMITS.count, 'per task').optional(),
  max_minutes: count(LIMITS.taskMinutes, 'a day').optional(),
  max_result_bytes: count(LIMITS.resultBytes, 'a limit past that is a typo').optional(),
  max_identical_calls: count(LIMITS.count, 'per task').optional(),
  max_consecutive_failures: count(LIMITS.count, 'per task').optional(),
};
const TASK_DEFAULTS = {
  max_calls: 40,
  max_minutes: 30,
  max_result_bytes: 2_000_000,
  max_identical_calls: 3,
  max_consecutive_failures: 5,
} as const;

const toolPolicy = z.strictObject({
  tier: z.enum(TIERS).optional(),
  self_service_tier: z.enum(TIERS).optional(),
  /** 0 (or 0s) turns identical-write deduplication off for the tool. */
  dedupe_window: z
    .preprocess(
      (v) => (v === 0 ? '0s' : v),
      duration('0s', LIMITS.dedupeWindow, 'the idempotency table keeps every key that long'),
    )
    .optional(),
  caps: z.array(capRule).max(LIMITS.capRulesPerTool).default([]),
  deny_target_groups: z.array(z.string().min(1).max(256)).max(LIMITS.listItems).default([]),
  mode: z.enum(['live', 'shadow']).default('live'),
  enabled: z.boolean().default(true),
  timeout: duration(
    '1s',
    LIMITS.timeout,
    'a tool call running longer is hung; timers cannot exceed ~24.8 days',
  ).optional(),
  max_identical_calls: count(LIMITS.count, 'per task').optional(),
  max_consecutive_failures: count(LIMITS.count, 'per task').optional(),
});

const timezone = z.string().refine(
  (tz) => {
    // UTC (the demo's zone) is valid everywhere: no Intl formatter, whose first use loads the ICU zone data, at start.
    if (tz === 'UTC') return true;
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  },
  { error: 'expected an IANA time zone such as UTC or Europe/Berlin' },
);

/** What each tool can be capped per and by: a rule on a key the tool never has would silently never limit. */
const CAP_KEYS: Partial<Record<ToolName, { per: readonly string[]; cost: boolean }>> = {
  ticket_create: { per: ['requester'], cost: false },
  ticket_comment: { per: [], cost: false },
  password_reset: { per: ['target'], cost: false },
  software_install: { per: ['target'], cost: true },
};

const ticketProjects = {
  project: z
    .string()
    .regex(/^[A-Z][A-Z0-9]{0,9}$/, { error: 'expected a project key like IT' })
    .default('IT'),
  allowed_projects: z
    .array(z.string().regex(/^[A-Z][A-Z0-9]{0,9}$/, { error: 'expected a project key like IT' }))
    .min(1)
    .max(LIMITS.listItems)
    .default(['IT']),
};
/** Secrets are named, never written in the policy: the name of an environment variable that holds one. */
const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, { error: 'expected an environment variable name like JIRA_API_TOKEN' });
const dn = z
  .string()
  .min(3)
  .max(1024)
  .regex(/^[^=,]+=[^,]+(,[^=,]+=[^,]+)*$/, { error: 'expected a DN like ou=people,dc=example,dc=com' });

export const policySchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected 1' }),
    timezone: timezone.default('UTC'),
    durability: z.enum(['strict', 'fast']).default('strict'),
    /** Where guard state lives (DESIGN §5): the SQLite file (default) or a PostgreSQL server shared by replicas. */
    store: z
      .discriminatedUnion('kind', [
        z.strictObject({ kind: z.literal('sqlite'), path: z.string().min(1).max(4096).optional() }),
        z.strictObject({
          kind: z.literal('postgres'),
          url_env: z
            .string()
            .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, { error: 'expected an environment variable name like ITGUARD_PG_URL' })
            .default('ITGUARD_PG_URL'),
        }),
      ])
      .prefault({ kind: 'sqlite' }),
    stdio_principal: name,
    principals: z.preprocess(
      checkKeys('principal', LIMITS.principals, NAME),
      z.record(name, z.strictObject({ scopes: z.array(z.enum(SCOPES)).max(LIMITS.listItems) })),
    ),
    task: z
      .strictObject({
        identify: z
          .array(z.enum(TASK_SOURCES))
          .min(1)
          .max(TASK_SOURCES.length)
          .refine((a) => new Set(a).size === a.length, { error: 'list each of meta, session, user at most once' })
          .default(['meta', 'session', 'user']),
        idle_minutes: count(LIMITS.taskMinutes, 'a day').default(30),
        ...TASK_BOUND_KEYS,
      })
      .prefault({}),
    session: z
      .strictObject({
        max_per_principal: count(LIMITS.sessionsPerPrincipal, 'open sessions per principal').default(64),
        // The earlier per-session bounds: read as task: keys (task: wins), with a warning from `policy check`.
        ...TASK_BOUND_KEYS,
      })
      .prefault({}),
    budgets: z
      .array(budgetRule)
      .max(LIMITS.budgetRules)
      .default(() => DEFAULT_BUDGETS.map((b) => ({ ...b }))),
    loop: z
      .strictObject({
        tripped_tasks_per_hour: count(LIMITS.count, 'per hour').default(10),
        // The earlier principal-wide loop rules: identical calls of different tasks are not a loop, and one task's
        // failures never stop another's (DESIGN §3), so these are read and ignored, with a warning.
        identical_per_hour: count(LIMITS.count, 'per hour').optional(),
        failures_in_a_row: count(LIMITS.count, 'in a row').optional(),
      })
      .prefault({}),
    mfa: z
      .strictObject({ allow_form_code: z.boolean().default(true), out_of_band: z.boolean().default(true) })
      .prefault({}),
    approvals: z
      .strictObject({
        wait_seconds: z.number().min(0).max(600).default(30),
        expire_hours: count(LIMITS.expireHours, 'a year').default(24),
      })
      .prefault({}),
    tools: z
      .preprocess(checkKeys('tool', TOOL_NAMES.length, undefined), z.partialRecord(z.enum(TOOL_NAMES), toolPolicy))
      .default({}),
    backends: z
      .strictObject({
        tickets: z
          .discriminatedUnion('kind', [
            z.strictObject({ kind: z.literal('embedded'), ...ticketProjects }),
            z.strictObject({
              kind: z.literal('jira'),
              ...ticketProjects,
              base_url: z.url({ protocol: /^https?$/, error: 'expected https://<site>.atlassian.net' }),
              email: z.email().optional(),
              email_env: envName.optional(),
              token_env: envName,
              issue_type: z.string().min(1).max(64).default('Task'),
              timeout_ms: z.int().min(1000).max(120_000).optional(),
            }),
          ])
          .prefault({ kind: 'embedded' }),
        directory: z
          .discriminatedUnion('kind', [
            z.strictObject({ kind: z.literal('embedded') }),
            z.strictObject({
              kind: z.literal('ldap'),
              url: z.url({ protocol: /^ldaps?$/, error: 'expected ldaps://host[:port] (ldap:// only for loopback)' }),
              bind_dn: dn,
              password_env: envName,
              base_dn: dn,
              user_base_dn: dn.optional(),
              group_base_dn: dn.optional(),
              flavor: z.enum(['openldap', 'active_directory']).default('openldap'),
              user_filter: z.string().min(3).max(512).includes('{user}', { error: 'must contain {user}' }).optional(),
              username_attribute: z
                .string()
                .regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/)
                .optional(),
              recovery_attribute: z
                .string()
                .regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/)
                .default('mail'),
              membership: z.enum(['memberOf', 'search', 'both']).optional(),
              ca_file: z.string().min(1).max(4096).optional(),
              timeout_ms: z.int().min(1000).max(120_000).optional(),
            }),
            oktaDirectorySchema,
          ])
          .prefault({ kind: 'embedded' }),
        deploy: deploySchema,
        factors: factorsSchema,
        kb: kbSchema,
        outbox: z
          .discriminatedUnion('kind', [
            z.strictObject({ kind: z.literal('embedded') }),
            z.strictObject({
              kind: z.literal('smtp'),
              url_env: envName,
              from: z.string().min(3).max(320),
              ca_file: z.string().min(1).max(4096).optional(),
              require_tls: z.boolean().default(true),
              timeout_ms: z.int().min(1000).max(120_000).optional(),
            }),
          ])
          .prefault({ kind: 'embedded' }),
      })
      .prefault({}),
    /** Optional: without it, /mcp accepts itguard's own bearer tokens only. */
    auth: authSchema(checkKeys('group', LIMITS.listItems, undefined), name).optional(),
    /** Optional: who hears about a request that needs a human (policy/notify.ts). */
    notify: notifySchema.optional(),
    demo: z.boolean().default(false),
  })
  .check((ctx) => {
    const p = ctx.value;
    if (!Object.hasOwn(p.principals, p.stdio_principal)) {
      ctx.issues.push({
        code: 'custom',
        path: ['stdio_principal'],
        message: 'must name a principal under principals',
        input: p.stdio_principal,
      });
    }
    for (const [tool, tp] of Object.entries(p.tools) as [ToolName, z.output<typeof toolPolicy>][]) {
      const allowed = CAP_KEYS[tool];
      if (tp.mode === 'shadow' && !allowed) {
        ctx.issues.push({
          code: 'custom',
          path: ['tools', tool, 'mode'],
          message: `shadow mode applies to write tools; ${tool} only reads`,
          input: tp.mode,
        });
      }
      const seen = new Set<string>();
      tp.caps.forEach((c, i) => {
        const at = ['tools', tool, 'caps', i];
        if (seen.has(c.name))
          ctx.issues.push({
            code: 'custom',
            path: [...at, 'name'],
            message: `duplicate cap name "${c.name}"`,
            input: c.name,
          });
        seen.add(c.name);
        if (!allowed) {
          ctx.issues.push({
            code: 'custom',
            path: at,
            message: `${tool} is a read tool; caps apply to write tools`,
            input: c,
          });
          return;
        }
        if (c.per && !['principal', 'user', 'task', 'session'].includes(c.per) && !allowed.per.includes(c.per)) {
          ctx.issues.push({
            code: 'custom',
            path: [...at, 'per'],
            message: `${tool} has no ${c.per}; use one of principal, user, task${allowed.per.length ? `, ${allowed.per.join(', ')}` : ''}`,
            input: c.per,
          });
        }
        if (c.measure === 'cost_usd' && !allowed.cost) {
          ctx.issues.push({
            code: 'custom',
            path: [...at, 'measure'],
            message: `${tool} has no cost; only software_install can be measured in cost_usd`,
            input: c.measure,
          });
        }
      });
    }
    checkAuthPrincipals(p.auth, p.principals, (i) => ctx.issues.push(i));
    for (const i of cloudIssues(p.backends))
      ctx.issues.push({ code: 'custom', path: i.path, message: i.message, input: undefined });
    checkNotify(p.notify, p.principals, (i) => ctx.issues.push(i));
    const budgetNames = new Set<string>();
    p.budgets.forEach((b, i) => {
      if (budgetNames.has(b.name))
        ctx.issues.push({
          code: 'custom',
          path: ['budgets', i, 'name'],
          message: `duplicate budget name "${b.name}"`,
          input: b.name,
        });
      budgetNames.add(b.name);
    });
    const t = p.backends.tickets;
    if (t.kind === 'jira' && !t.email === !t.email_env) {
      ctx.issues.push({
        code: 'custom',
        path: ['backends', 'tickets', 'email'],
        message: 'give exactly one of email and email_env',
        input: t.email,
      });
    }
    if (!t.allowed_projects.includes(t.project)) {
      ctx.issues.push({
        code: 'custom',
        path: ['backends', 'tickets', 'project'],
        message: 'must be listed in allowed_projects',
        input: t.project,
      });
    }
  });

export type PolicyInput = z.input<typeof policySchema>;
type Parsed = z.output<typeof policySchema>;

export interface BudgetRule {
  name: string;
  window: 'hour' | 'day';
  /** `user`: the OAuth human (on_behalf_of_id); a call with no user is not counted by it. */
  per: 'principal' | 'user' | 'task';
  measure: 'calls' | 'failures' | 'result_bytes';
  limit: number;
  alarmAt: number | undefined;
  /** Only these tools count toward the rule; undefined = every call, unknown tool names included. */
  tools: readonly ToolName[] | undefined;
}

export interface Policy {
  version: 1;
  timezone: string;
  durability: 'strict' | 'fast';
  /** `sqlite` (path: the policy's, else --db / ITGUARD_DB) or `postgres` (the URL read from `urlEnv`). */
  store: { kind: 'sqlite'; path: string | undefined } | { kind: 'postgres'; urlEnv: string };
  stdioPrincipal: string;
  principals: Readonly<Record<string, { scopes: readonly Scope[] }>>;
  /** Per-task bounds (DESIGN §3 step 4): how a task is identified, when it ends, what one task may spend. */
  task: {
    identify: readonly TaskSource[];
    idleMinutes: number;
    maxCalls: number;
    maxMinutes: number;
    maxResultBytes: number;
    maxIdenticalCalls: number;
    maxConsecutiveFailures: number;
  };
  session: { maxPerPrincipal: number };
  budgets: readonly BudgetRule[];
  /** The fleet breaker: trips the whole principal when this many different tasks tripped within the hour. */
  loop: { trippedTasksPerHour: number };
  /** Keys of an earlier policy format that were read under their new meaning (or ignored); `policy check` warns. */
  deprecated: readonly { path: string; message: string }[];
  mfa: { allowFormCode: boolean; outOfBand: boolean };
  approvals: { waitSeconds: number; expireHours: number };
  tools: Readonly<Record<ToolName, ToolPolicy>>;
  backends: {
    tickets:
      | { kind: 'embedded'; project: string; allowedProjects: readonly string[] }
      | {
          kind: 'jira';
          project: string;
          allowedProjects: readonly string[];
          baseUrl: string;
          email: string | undefined;
          emailEnv: string | undefined;
          tokenEnv: string;
          issueType: string;
          timeoutMs: number | undefined;
        };
    directory:
      | { kind: 'embedded' }
      | {
          kind: 'ldap';
          url: string;
          bindDn: string;
          passwordEnv: string;
          baseDn: string;
          userBaseDn: string | undefined;
          groupBaseDn: string | undefined;
          flavor: 'openldap' | 'active_directory';
          userFilter: string | undefined;
          usernameAttribute: string | undefined;
          recoveryAttribute: string;
          membership: 'memberOf' | 'search' | 'both' | undefined;
          caFile: string | undefined;
          timeoutMs: number | undefined;
        }
      | OktaDirectoryPolicy;
    deploy: DeployPolicy;
    factors: FactorsPolicy;
    kb: KbPolicy;
    outbox:
      | { kind: 'embedded' }
      | {
          kind: 'smtp';
          urlEnv: string;
          from: string;
          caFile: string | undefined;
          requireTls: boolean;
          timeoutMs: number | undefined;
        };
  };
  /** The OAuth 2.1 resource server (src/auth/); undefined = static bearer tokens only. */
  auth: AuthPolicy | undefined;
  /** Approver notifications (policy/notify.ts); undefined = nobody is told. */
  notify: NotifyPolicy | undefined;
  demo: boolean;
}

const DEFAULT_DEDUPE_MS = 15 * 60_000;
const DEFAULT_TIMEOUT_MS = 30_000;

/** A null-prototype copy: a lookup by a name the policy does not have finds nothing, whatever the name. */
function nullProto<V>(entries: Iterable<readonly [string, V]>): Record<string, V> {
  const o = Object.create(null) as Record<string, V>;
  for (const [k, v] of entries) o[k] = v;
  return o;
}

/** A `task:` key, else the same key under the earlier `session:`, else the default. */
function taskBound<K extends keyof typeof TASK_DEFAULTS>(p: Parsed, k: K): number {
  return p.task[k] ?? p.session[k] ?? TASK_DEFAULTS[k];
}

/** What an earlier policy said that this one reads differently: each becomes a `policy check` warning. */
function deprecations(p: Parsed): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  for (const k of Object.keys(TASK_DEFAULTS) as (keyof typeof TASK_DEFAULTS)[]) {
    if (p.session[k] === undefined) continue;
    out.push({
      path: `session.${k}`,
      message:
        p.task[k] === undefined
          ? `session.${k} is read as task.${k} (bounds are per task now); move it under task:`
          : `session.${k} is ignored: task.${k} is set`,
    });
  }
  for (const k of ['identical_per_hour', 'failures_in_a_row'] as const) {
    if (p.loop[k] === undefined) continue;
    out.push({
      path: `loop.${k}`,
      message: `loop.${k} is ignored: identical calls and failure streaks are bounded per task (task.max_identical_calls, task.max_consecutive_failures); the principal trips on loop.tripped_tasks_per_hour`,
    });
  }
  p.budgets.forEach((b, i) => {
    if (b.per === 'session') out.push({ path: `budgets.${i}.per`, message: `per: session is read as per: task` });
  });
  for (const [tool, tp] of Object.entries(p.tools)) {
    tp?.caps.forEach((c, i) => {
      if (c.per === 'session')
        out.push({ path: `tools.${tool}.caps.${i}.per`, message: `per: session is read as per: task` });
    });
  }
  return out;
}

export function toPolicy(p: Parsed): Policy {
  const task: Policy['task'] = {
    identify: p.task.identify,
    idleMinutes: p.task.idle_minutes,
    maxCalls: taskBound(p, 'max_calls'),
    maxMinutes: taskBound(p, 'max_minutes'),
    maxResultBytes: taskBound(p, 'max_result_bytes'),
    maxIdenticalCalls: taskBound(p, 'max_identical_calls'),
    maxConsecutiveFailures: taskBound(p, 'max_consecutive_failures'),
  };
  // Keyed by name, looked up with names from callers (a tool call's name, `token create --principal`): null-prototype.
  const tools = Object.create(null) as Record<ToolName, ToolPolicy>;
  for (const tool of TOOL_NAMES) {
    const t = p.tools[tool];
    tools[tool] = {
      tier: t?.tier,
      selfServiceTier: t?.self_service_tier,
      dedupeWindowMs: t?.dedupe_window ?? DEFAULT_DEDUPE_MS,
      caps: (t?.caps ?? []).map((c) => ({
        tool,
        name: c.name,
        window: c.window,
        per: c.per === 'session' ? 'task' : (c.per ?? 'global'),
        measure: c.measure,
        limit: c.limit,
        alarmAt: c.alarm_at,
      })),
      denyTargetGroups: t?.deny_target_groups ?? [],
      mode: t?.mode ?? 'live',
      enabled: t?.enabled ?? true,
      timeoutMs: t?.timeout ?? DEFAULT_TIMEOUT_MS,
      maxIdenticalCalls: t?.max_identical_calls ?? task.maxIdenticalCalls,
      maxConsecutiveFailures: t?.max_consecutive_failures ?? task.maxConsecutiveFailures,
    };
  }
  return deepFreeze({
    version: 1,
    timezone: p.timezone,
    durability: p.durability,
    store:
      p.store.kind === 'postgres'
        ? { kind: 'postgres', urlEnv: p.store.url_env }
        : { kind: 'sqlite', path: p.store.path },
    stdioPrincipal: p.stdio_principal,
    principals: nullProto(Object.entries(p.principals).map(([k, v]) => [k, { scopes: v.scopes }] as const)),
    task,
    session: { maxPerPrincipal: p.session.max_per_principal },
    budgets: p.budgets.map((b) => ({
      name: b.name,
      window: b.window,
      per: b.per === 'session' ? 'task' : b.per,
      measure: b.measure,
      limit: b.limit,
      alarmAt: b.alarm_at,
      tools: b.tools,
    })),
    loop: { trippedTasksPerHour: p.loop.tripped_tasks_per_hour },
    deprecated: deprecations(p),
    mfa: { allowFormCode: p.mfa.allow_form_code, outOfBand: p.mfa.out_of_band },
    approvals: { waitSeconds: p.approvals.wait_seconds, expireHours: p.approvals.expire_hours },
    tools,
    backends: backendsOf(p.backends),
    auth: toAuthPolicy(p.auth),
    notify: toNotifyPolicy(p.notify),
    demo: p.demo,
  });
}

function backendsOf(b: Parsed['backends']): Policy['backends'] {
  const t = b.tickets;
  const d = b.directory;
  const o = b.outbox;
  const projects = { project: t.project, allowedProjects: t.allowed_projects };
  return {
    tickets:
      t.kind === 'embedded'
        ? { kind: 'embedded', ...projects }
        : {
            kind: 'jira',
            ...projects,
            baseUrl: t.base_url,
            email: t.email,
            emailEnv: t.email_env,
            tokenEnv: t.token_env,
            issueType: t.issue_type,
            timeoutMs: t.timeout_ms,
          },
    directory:
      d.kind === 'embedded'
        ? { kind: 'embedded' }
        : d.kind === 'okta'
          ? toOktaDirectory(d)
          : {
              kind: 'ldap',
              url: d.url,
              bindDn: d.bind_dn,
              passwordEnv: d.password_env,
              baseDn: d.base_dn,
              userBaseDn: d.user_base_dn,
              groupBaseDn: d.group_base_dn,
              flavor: d.flavor,
              userFilter: d.user_filter,
              usernameAttribute: d.username_attribute,
              recoveryAttribute: d.recovery_attribute,
              membership: d.membership,
              caFile: d.ca_file,
              timeoutMs: d.timeout_ms,
            },
    deploy: toDeploy(b.deploy),
    factors: toFactors(b.factors, d.kind === 'okta' ? toOktaDirectory(d) : d),
    kb: toKb(b.kb),
    outbox:
      o.kind === 'embedded'
        ? { kind: 'embedded' }
        : {
            kind: 'smtp',
            urlEnv: o.url_env,
            from: o.from,
            caFile: o.ca_file,
            requireTls: o.require_tls,
            timeoutMs: o.timeout_ms,
          },
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
