/**
 * A typed builder for test policies: the demo policy (or any policy document) as data, edited by named helpers instead of
 * string replacements on its YAML text, so that an edit naming a key the policy file does not have, or a value of the
 * wrong kind, is a compile error and not a silently unmatched `.replace(`.
 *
 *   demoPolicy().principal('nobody', []).cap('ticket_create', { name: 'tickets-per-day', window: 'day', limit: 25 })
 *     .task({ max_calls: 7 }).parse()
 *
 * The types come from the policy file's own zod schema (src/policy/schema.ts): `PolicyInput` for the top level,
 * and the input types of the principal and tool entries, which the schema checks in a preprocess step (so
 * `PolicyInput` alone types them `unknown`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { z } from 'zod';
import { DEMO_POLICY_YAML } from '../../src/policy/demo.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/schema.js';
import type { PolicyInput, policySchema } from '../../src/policy/schema.js';
import type { Scope, ToolName } from '../../src/core/policy.js';

type Shape = (typeof policySchema)['shape'];
type Required_<T> = Exclude<T, undefined>;

/** One principal entry: `{ scopes: [...] }`. */
export type PrincipalInput = z.input<Shape['principals']['out']['valueType']>;
/** One entry under `tools:`; `dedupe_window` is a duration such as `15m`, or 0 / `0s` for off. */
export type ToolInput = Omit<z.input<ReturnType<Shape['tools']['unwrap']>['out']['valueType']>, 'dedupe_window'> & {
  dedupe_window?: string | 0;
};
/** One rule under a tool's `caps:`. */
export type CapInput = Required_<ToolInput['caps']>[number];
/** One rule under `budgets:`. */
export type BudgetInput = Required_<PolicyInput['budgets']>[number];
export type TaskInput = Required_<PolicyInput['task']>;
export type SessionInput = Required_<PolicyInput['session']>;
export type LoopInput = Required_<PolicyInput['loop']>;
export type ApprovalsInput = Required_<PolicyInput['approvals']>;
export type MfaInput = Required_<PolicyInput['mfa']>;
export type BackendsInput = Required_<PolicyInput['backends']>;

/** The policy file as data, with principals and tools typed. */
export type PolicyDoc = Omit<PolicyInput, 'principals' | 'tools'> & {
  principals: Record<string, PrincipalInput>;
  tools?: Partial<Record<ToolName, ToolInput>>;
};

/** Replaces the rule of the same name, or appends it. */
function upsert<T extends { name: string }>(list: T[], rule: T): T[] {
  const i = list.findIndex((r) => r.name === rule.name);
  return i < 0 ? [...list, rule] : list.map((r, j) => (j === i ? rule : r));
}

export class PolicyBuilder {
  private doc: PolicyDoc;

  constructor(doc: PolicyDoc) {
    this.doc = structuredClone(doc);
  }

  /** Adds a principal, or replaces the scopes of one. */
  principal(name: string, scopes: Scope[]): this {
    this.doc.principals = { ...this.doc.principals, [name]: { scopes } };
    return this;
  }

  /** Adds scopes to a principal the policy already has. */
  grant(name: string, ...scopes: Scope[]): this {
    const p = this.doc.principals[name];
    if (!p) throw new Error(`policy builder: no principal ${name}`);
    return this.principal(name, [...p.scopes, ...scopes]);
  }

  /**
   * Merges keys into a tool's entry (adding the tool if it has none); a key given as `undefined` is left out. With
   * `{ replace: true }` the entry is `spec` alone.
   */
  tool(name: ToolName, spec: ToolInput, opts: { replace?: boolean } = {}): this {
    const tools = { ...this.doc.tools };
    tools[name] = opts.replace ? { ...spec } : { ...tools[name], ...spec };
    this.doc.tools = tools;
    return this;
  }

  /** Replaces the tool's cap of the same name, or appends it. */
  cap(tool: ToolName, rule: CapInput): this {
    return this.tool(tool, { caps: upsert(this.doc.tools?.[tool]?.caps ?? [], rule) });
  }

  /** Sets a tool's caps to exactly these rules. */
  caps(tool: ToolName, rules: CapInput[]): this {
    return this.tool(tool, { caps: rules });
  }

  /** Replaces the budget of the same name, or appends it. */
  budget(rule: BudgetInput): this {
    this.doc.budgets = upsert(this.doc.budgets ?? [], rule);
    return this;
  }

  /** Sets the budgets to exactly these rules (`[]`: none). */
  budgets(rules: BudgetInput[]): this {
    this.doc.budgets = rules;
    return this;
  }

  task(bounds: TaskInput): this {
    this.doc.task = { ...this.doc.task, ...bounds };
    return this;
  }

  session(bounds: SessionInput): this {
    this.doc.session = { ...this.doc.session, ...bounds };
    return this;
  }

  loop(rules: LoopInput): this {
    this.doc.loop = { ...this.doc.loop, ...rules };
    return this;
  }

  approvals(a: ApprovalsInput): this {
    this.doc.approvals = { ...this.doc.approvals, ...a };
    return this;
  }

  mfa(m: MfaInput): this {
    this.doc.mfa = { ...this.doc.mfa, ...m };
    return this;
  }

  /** Sets one backend (`tickets`, `directory`, ...) to exactly this entry. */
  backend<K extends keyof BackendsInput>(kind: K, spec: BackendsInput[K]): this {
    this.doc.backends = { ...this.doc.backends, [kind]: spec };
    return this;
  }

  /** Sets any top-level key (`timezone`, `stdio_principal`, `auth`, `notify`, ...) to exactly this value. */
  set<K extends keyof PolicyDoc>(key: K, value: PolicyDoc[K]): this {
    this.doc[key] = value;
    return this;
  }

  /** Applies a reusable edit (a preset such as "every bound raised"). */
  with(edit: (b: this) => unknown): this {
    edit(this);
    return this;
  }

  /** Edits the policy as typed data, for what the named helpers do not cover (every cap of every tool, say). */
  edit(fn: (doc: PolicyDoc) => void): this {
    fn(this.doc);
    return this;
  }

  /** A fresh builder with the same policy, for variants of one base. */
  clone(): PolicyBuilder {
    return new PolicyBuilder(this.doc);
  }

  /** The policy file as data (a copy). */
  object(): PolicyDoc {
    return structuredClone(this.doc);
  }

  /** The policy file's text. */
  yaml(): string {
    return stringify(this.doc);
  }

  /** The validated policy, as `parsePolicy` reads the file's text (throws PolicyError as a file would). */
  parse(source = 'test policy'): Policy {
    return parsePolicy(this.yaml(), source);
  }

  /** Writes `<dir>/<name>.yaml` after checking it parses (a bad edit fails here, not in a server), and returns its path. */
  write(dir: string, name = 'policy'): string {
    const file = join(dir, `${name}.yaml`);
    const text = this.yaml();
    parsePolicy(text, file);
    writeFileSync(file, text);
    return file;
  }
}

const DEMO = parse(DEMO_POLICY_YAML) as PolicyDoc;

/** A builder on the built-in demo policy (src/policy/demo.ts). */
export function demoPolicy(): PolicyBuilder {
  return new PolicyBuilder(DEMO);
}
