/**
 * Everything one itguard process holds: the database, policy, stores, backends, logger, metrics and the
 * composed handler of each tool. `serve`, the CLI's admin verbs and the tests all build one of these.
 */
import type { Logger } from 'pino';
import { seedDemo } from './demo/seed.js';
import { AuditWriter } from './store/sqlite/committer.js';
import type { GuardDeps, WaitClock } from './guard/deps.js';
import { buildPipeline } from './guard/pipeline.js';
import { execute, KillSwitchAbort } from './guard/execute.js';
import { startExecutor } from './guard/executor.js';
import type { AnyTool, GuardView, Principal } from './core/tool.js';
import type { Call, Handler } from './guard/types.js';
import { createLogger } from './log.js';
import { noopMetrics, type Metrics } from './metrics.js';
import type { Policy } from './policy/schema.js';
import { AuditStore } from './store/sqlite/audit-store.js';
import { carryEffectsByAudit, openDb, type Db } from './store/sqlite/db.js';
import { sqliteHealth } from './store/sqlite/health.js';
import { KillSwitchStore } from './store/sqlite/killswitch-store.js';
import { TokenStore } from './store/sqlite/token-store.js';
import { CapsStore } from './store/sqlite/caps-store.js';
import { IdempotencyStore } from './store/sqlite/idempotency-store.js';
import { ApprovalsStore } from './store/sqlite/approvals-store.js';
import { MfaStore } from './store/sqlite/mfa-store.js';
import { BudgetStore } from './store/sqlite/budget-store.js';
import { budgetsView, breakerView, capsView, taskView } from './guard/caps-view.js';
import { ALL_TOOLS } from './tools/index.js';
import { buildAll, buildBackends, type Embedded } from './backends/build.js';
import { embeddedSqlite } from './backends/embedded.js';
import type { CloudTuning } from './backends/cloud.js';
import { config } from './config.js';
import { stateCodec, stateKey } from './guard/mrtr.js';
import { MetaStore } from './store/sqlite/meta-store.js';
import { NotifyStore } from './store/sqlite/notify-store.js';
import { sqliteStore } from './store/sqlite/ports.js';
import type { Store } from './store/ports/index.js';
import type { StoreHealth, Stores } from './stores.js';
import { Notifier } from './notify/notifier.js';

export interface AppOptions {
  dbPath: string;
  policy: Policy;
  log?: Logger;
  now?: () => number;
  /** The clock calls waiting on a human are measured with (default: monotonic time and real sleeps). */
  waitClock?: WaitClock;
  /** Poll interval of the kill-switch watcher that aborts in-flight calls (ms). */
  killPollMs?: number;
  /** Prometheus metrics (HTTP mode); defaults to no-op metrics. */
  metrics?: Metrics;
  kbDir?: string;
  /** Poll interval of the executor that runs approved requests (ms). */
  executorPollMs?: number;
  /** How long an MRTR requestState stays valid (s); default 300. Tests shorten it. */
  stateTtlSeconds?: number;
  /** Where backend secrets are read from (the variables the policy names); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Poll intervals of the cloud adapters (Okta push, Intune job status); tests shorten them. */
  cloud?: CloudTuning;
  /** Poll interval of the notifier that sends approver notifications (ms; policy `notify:`). */
  notifyPollMs?: number;
}

/**
 * The SQLite adapter's stores themselves. Only this module (which wires the adapter) and the tests use them; every
 * other module sees the ports (`store`, `audit`).
 */
export interface SqliteStores {
  db: Db;
  killSwitch: KillSwitchStore;
  caps: CapsStore;
  idem: IdempotencyStore;
  approvals: ApprovalsStore;
  mfa: MfaStore;
  auditStore: AuditStore;
  tokens: TokenStore;
  budgets: BudgetStore;
  notifyStore: NotifyStore;
}

/** One process: the guards' dependencies and the operator surfaces' ports (store/ports/). */
export interface App extends GuardDeps {
  /** Every store port (the guards' and the operator surfaces'). */
  store: Store;
  storeKind: 'sqlite' | 'postgres';
  /** Does the store answer? (`/healthz` fails when it does not.) */
  storeHealth(): Promise<StoreHealth>;
  tools: readonly AnyTool[];
  /** True when this open seeded a new database with demo data. */
  seeded: boolean;
  /** Every tools/call goes through this one composed pipeline. */
  pipeline: Handler;
  embedded: Embedded;
  principal(name: string): Principal | undefined;
  /** Aborted when the kill switch is seen engaged; a fresh one after each engagement. */
  killSignal(): AbortSignal;
  /**
   * Runs one pass of the approved-request executor now (after the pass in progress) and resolves when it is done.
   * The timer keeps polling as before; this lets a caller (the tests) see that a pass ran without sleeping.
   */
  executorPass(): Promise<void>;
  /** The worker sending approver notifications when `notify:` is configured. */
  notifier: Notifier | undefined;
  /** Stops the timers and closes the store (SQLite at once; the PostgreSQL pool once its queries end). */
  close(): Promise<void>;
}

/** A process on the SQLite store: its adapter's stores are there for the tests (src/ uses the ports). */
export interface SqliteApp extends App {
  sqlite: SqliteStores;
}

export type { StoreHealth, Stores } from './stores.js';

/** The SQLite adapter's bundle: its stores are there for this module and the tests. */
export interface SqliteBundle extends Stores {
  kind: 'sqlite';
  audit: AuditWriter;
  sqlite: SqliteStores;
}

/** The SQLite database and its stores, without guards or timers (synchronous: the SQLite adapter opens at once). */
export function openStores(
  dbPath: string,
  policy: Policy,
  now: () => number = Date.now,
  o: { env?: NodeJS.ProcessEnv; log?: Logger; cloud?: CloudTuning } = {},
): SqliteBundle {
  const db = openDb(dbPath, { durability: policy.durability });
  // The embedded backends' effects are made durable by the strict commit of their outcome records (store/db.ts).
  carryEffectsByAudit(db);
  const auditStore = new AuditStore(db, undefined, now);
  const mfa = new MfaStore(db, now);
  const { backends, embedded } = buildBackends({ embedded: embeddedSqlite(db, now), policy, now, ...o });
  const sqlite: SqliteStores = {
    db,
    auditStore,
    killSwitch: new KillSwitchStore(db, now),
    tokens: new TokenStore(db, now),
    caps: new CapsStore(db, policy.timezone),
    budgets: new BudgetStore(db, policy.timezone),
    idem: new IdempotencyStore(db),
    approvals: new ApprovalsStore(db, now),
    notifyStore: new NotifyStore(db, now),
    mfa,
  };
  return {
    kind: 'sqlite',
    audit: new AuditWriter(auditStore),
    store: sqliteStore(sqlite),
    sqlite,
    backends,
    embedded,
    health: sqliteHealth(db, dbPath),
    close: async () => void db.close(),
  };
}

/**
 * The store the policy names (`store.kind`), connected, migrated and checked: SQLite at `dbPath` (or the policy's
 * `store.path`), or the PostgreSQL server whose URL is in the variable `store.url_env` names. Refuses with a
 * ConfigError / PgStoreError / DatabaseError (exit 2 from the CLI).
 */
export async function connectStores(
  dbPath: string,
  policy: Policy,
  now?: () => number,
  o: { env?: NodeJS.ProcessEnv; log?: Logger; cloud?: CloudTuning } = {},
): Promise<Stores> {
  if (policy.store.kind === 'postgres') {
    const { openPgStores } = await import('./app-postgres.js');
    return openPgStores(policy, now, o);
  }
  return openStores(dbPath, policy, now, o);
}

/** What a store adds to the process beyond `Stores`: the MRTR key, the open state and how it is torn down. */
interface Opened {
  stores: Stores;
  seeded: boolean;
  /** The MRTR requestState key: ITGUARD_STATE_KEY, else one generated once and kept in the store's meta table. */
  mrtrKey: Uint8Array;
  /** Is the kill switch engaged (the watcher's cheap read: a cached view on PostgreSQL, a read on SQLite)? */
  engaged(): boolean;
  /** Tears the store down after the timers stopped. */
  close(): Promise<void>;
}

/** One process on the embedded SQLite store (synchronous; what the tests and `npm start` use). */
export function openApp(opts: AppOptions): SqliteApp {
  const now = opts.now ?? Date.now;
  const log = opts.log ?? createLogger();
  const bundle = openStores(opts.dbPath, opts.policy, now, {
    log,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cloud ? { cloud: opts.cloud } : {}),
  });
  const { db, auditStore, killSwitch } = bundle.sqlite;
  try {
    // A process whose ITGUARD_AUDIT_KEY is not the chain's refuses to start (DESIGN §5): AuditKeyMismatch, exit 2.
    auditStore.checkKey();
    buildAll(bundle.backends);
  } catch (e) {
    db.close();
    throw e;
  }
  const seeded = opts.policy.demo ? seedDemo(db, opts.kbDir) : false;
  const app = assemble(opts, log, {
    stores: bundle,
    seeded,
    mrtrKey: stateKey(config().stateKey, new MetaStore(db)),
    engaged: () => killSwitch.state().engaged,
    close: async () => void db.close(),
  });
  return { ...app, sqlite: bundle.sqlite };
}

/**
 * One process on the store the policy names: SQLite (as openApp) or PostgreSQL (connected, migrated under the
 * advisory lock, the audit key checked, the kill switch read and listened to before the first call).
 */
export async function startApp(opts: AppOptions): Promise<App> {
  if (opts.policy.store.kind !== 'postgres') return openApp(opts);
  const log = opts.log ?? createLogger();
  const { openPgApp } = await import('./app-postgres.js');
  // Without an injected clock, the process runs on the database's (store/postgres/clock.ts).
  const opened = await openPgApp(opts.policy, opts.now, {
    log,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cloud ? { cloud: opts.cloud } : {}),
    ...(opts.kbDir ? { kbDir: opts.kbDir } : {}),
  });
  try {
    buildAll(opened.stores.backends);
  } catch (e) {
    await opened.close();
    throw e;
  }
  return assemble({ ...opts, now: opened.now }, log, opened);
}

function assemble(opts: AppOptions, log: Logger, opened: Opened): App {
  const now = opts.now ?? Date.now;
  const { stores, seeded } = opened;
  const { audit, store, backends, embedded } = stores;
  const metrics: Metrics = opts.metrics ?? noopMetrics();
  metrics.bindTasks(() => store.budgets.taskCounts(opts.policy.task.idleMinutes * 60_000, now()));
  const links = { base: 'http://127.0.0.1' };
  let notifier: Notifier | undefined;
  try {
    notifier =
      opts.policy.notify &&
      new Notifier({
        policy: opts.policy.notify,
        store: store.notify,
        approvals: store.approvals,
        runner: audit,
        outbox: () => backends.outbox,
        log: log.child({ component: 'notify' }),
        now,
        links,
        ...(opts.env ? { env: opts.env } : {}),
      });
  } catch (e) {
    void opened.close();
    throw e;
  }
  const deps: GuardDeps = {
    policy: opts.policy,
    store,
    audit,
    backends,
    log,
    metrics,
    now,
    mrtr: stateCodec(opened.mrtrKey, opts.stateTtlSeconds),
    links,
    notify: notifier,
    waitClock: opts.waitClock,
  };

  let kill = new AbortController();
  const watcher = setInterval(() => {
    try {
      const engaged = opened.engaged();
      if (engaged && !kill.signal.aborted) kill.abort(new KillSwitchAbort());
      if (!engaged && kill.signal.aborted) kill = new AbortController();
    } catch (e) {
      log.error({ err: e }, 'kill switch watcher could not read state');
    }
  }, opts.killPollMs ?? 200);
  watcher.unref();

  const guardView = async (call: Call): Promise<GuardView> => {
    const ks = await store.killSwitch.state();
    return {
      killSwitch: { engaged: ks.engaged, reason: ks.reason, changedAt: ks.changedAt },
      task: await taskView(opts.policy, store.budgets, call, now()),
      caps: await capsView(opts.policy, store.caps, call, now()),
      budgets: await budgetsView(opts.policy, store.budgets, call, now()),
      loopBreaker: await breakerView(opts.policy, store.budgets, call.principal.name, now()),
    };
  };

  const pipeline = buildPipeline(deps, guardView);
  const killSignal = () => {
    // After a resume the watcher renews the controller on its next poll; a call arriving before that must not
    // inherit the old, aborted signal.
    if (kill.signal.aborted && !opened.engaged()) kill = new AbortController();
    return kill.signal;
  };
  const principal = (name: string): Principal | undefined => {
    const p = opts.policy.principals[name];
    return p && { name, scopes: p.scopes };
  };
  const executor = startExecutor(
    { ...deps, tools: ALL_TOOLS, principal, killSignal },
    execute(deps, guardView),
    opts.executorPollMs,
  );

  notifier?.start(opts.notifyPollMs);
  let closing: Promise<void> | undefined;
  return {
    ...deps,
    store,
    storeKind: stores.kind,
    storeHealth: () => stores.health(),
    embedded,
    tools: ALL_TOOLS,
    seeded,
    pipeline,
    principal,
    killSignal,
    executorPass: () => executor.pass(),
    notifier,
    close() {
      clearInterval(watcher);
      executor.stop();
      notifier?.stop();
      return (closing ??= opened.close());
    },
  };
}
