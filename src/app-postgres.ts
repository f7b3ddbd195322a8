/**
 * Opens itguard on the PostgreSQL store (policy `store: { kind: postgres, url_env }`; DESIGN §5, §6 "Replicas"):
 * connect (PostgreSQL 15+), apply the numbered migrations under the advisory lock (every replica may start at once:
 * one applies them, the others wait and find nothing to do), check this process's audit key against the chain, read
 * the kill switch and LISTEN for its changes, then build the store ports, the unit runner and the domain backends on
 * the same database. The MRTR state key is ITGUARD_STATE_KEY, else one generated once and kept in `meta` (the first
 * replica's key wins for every replica).
 *
 * Any failure here refuses to start (PgStoreError / AuditKeyMismatch: exit 2 from the CLI) and closes the pool.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { config } from './config.js';
import type { Policy } from './policy/schema.js';
import type { CloudTuning } from './backends/cloud.js';
import { buildBackends } from './backends/build.js';
import { embeddedPostgres } from './backends/embedded-postgres.js';
import { seedPostgresDemo } from './demo/seed-postgres.js';
import { connectPg, pgUrl, type PgStore } from './store/postgres/connect.js';
import { migratePg } from './store/postgres/migrations.js';
import { pgStore } from './store/postgres/ports.js';
import { PgUnitRunner } from './store/postgres/runner.js';
import { PgAuditRead } from './store/postgres/audit-read.js';
import { PgTokens } from './store/postgres/tokens.js';
import { PgNotify } from './store/postgres/notify.js';
import { PgMeta } from './store/postgres/meta.js';
import { PgClock } from './store/postgres/clock.js';
import type { Stores } from './stores.js';
import { pgHealth } from './store/postgres/health.js';

const STATE_KEY = 'mrtr_state_key';

export interface PgOpenOptions {
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  cloud?: CloudTuning;
  kbDir?: string;
}

/**
 * The store ports, the runner and the backends on PostgreSQL, without guards or timers (the CLI's admin verbs).
 * `now` (tests) replaces the database's clock (clock.ts), which times everything otherwise.
 */
export async function openPgStores(policy: Policy, now?: () => number, o: PgOpenOptions = {}): Promise<Stores> {
  return (await open(policy, now, o, false)).stores;
}

/** As openPgStores, plus what a serving process needs: the kill switch listened to, the demo seeded, the MRTR key. */
export async function openPgApp(policy: Policy, now?: () => number, o: PgOpenOptions = {}) {
  return open(policy, now, o, true);
}

async function open(policy: Policy, given: (() => number) | undefined, o: PgOpenOptions, serving: boolean) {
  if (policy.store.kind !== 'postgres') throw new Error('openPgStores: the policy names the sqlite store');
  const pg = await connectPg(pgUrl({ kind: 'postgres', url_env: policy.store.urlEnv }, o.env ?? process.env));
  let clock: PgClock | undefined;
  try {
    const migrated = await migratePg(pg);
    o.log?.info({ store: pg.target, schema: migrated.version, applied: migrated.applied }, 'PostgreSQL store ready');
    // Windows, idle times and leases on the database's clock: the same instant on every replica.
    clock = given ? undefined : await PgClock.start(pg);
    const now = given ?? clock!.now;
    const audit = new PgUnitRunner(pg, { now });
    await audit.checkKey();
    const store = pgStore(
      pg,
      { tz: policy.timezone, now },
      {
        auditLog: new PgAuditRead(pg),
        tokens: new PgTokens(pg, now),
        notify: new PgNotify(pg, now),
      },
    );
    await store.start();
    const { backends, embedded } = buildBackends({
      embedded: embeddedPostgres(pg, now),
      policy,
      now,
      ...(o.env ? { env: o.env } : {}),
      ...(o.log ? { log: o.log } : {}),
      ...(o.cloud ? { cloud: o.cloud } : {}),
    });
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= store.stop().finally(() => (clock?.stop(), pg.close())));
    const stores: Stores = {
      kind: 'postgres',
      audit,
      store,
      backends,
      embedded,
      health: () => pgHealth(pg),
      close,
    };
    const seeded =
      serving && policy.demo ? await seedPostgresDemo(pg, { ...(o.kbDir ? { kbDir: o.kbDir } : {}), now }) : false;
    const mrtrKey = serving ? (config().stateKey ?? (await sharedStateKey(pg))) : new Uint8Array();
    return {
      stores,
      now,
      seeded,
      mrtrKey,
      engaged: () => store.killSwitch.state().engaged,
      close,
    };
  } catch (e) {
    clock?.stop();
    await pg.close().catch(() => {});
    throw e;
  }
}

/** The demo's MRTR key: generated once per database, the first writer's key kept for every replica. */
async function sharedStateKey(pg: PgStore): Promise<Uint8Array> {
  const hex = await new PgMeta(pg).setIfAbsent(STATE_KEY, randomBytes(32).toString('hex'));
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
