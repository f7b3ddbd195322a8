/**
 * The embedded backends and their records on whichever store the process uses (issue 20): SQLite (the Embedded*
 * adapters over the itguard file) or PostgreSQL (the Postgres* adapters over the same tables there), with the
 * records ports (factors, reset links, deliveries, deploy jobs) of the same store. `Embedded` is what the CLI
 * (`kb import`, `directory list`, `outbox`), the demo seed and the tests use besides the ports: methods the SQLite
 * adapters answer at once and PostgreSQL asynchronously, so callers always `await`.
 */
import type { Awaitable } from '../core/backend.js';
import type { DeliveriesPort } from '../core/ports/deliveries.js';
import type { DeployPort, InstallJob } from '../core/ports/deploy.js';
import type { DeployJobsPort } from '../core/ports/deploy-jobs.js';
import type { DirectoryPort } from '../core/ports/directory.js';
import type { FactorsPort } from '../core/ports/factors.js';
import type { Article, KbHit, KbPort } from '../core/ports/kb.js';
import type { OutboxPort } from '../core/ports/outbox.js';
import type { ResetLinksPort } from '../core/ports/reset-links.js';
import type { TicketsPort } from '../core/ports/tickets.js';
import type { Db } from '../store/sqlite/db.js';
import { DeployJobsStore } from '../store/sqlite/deploy-jobs-store.js';
import { MfaStore } from '../store/sqlite/mfa-store.js';
import { OutboxStore } from '../store/sqlite/outbox-store.js';
import { ResetStore } from '../store/sqlite/reset-store.js';
import type { User } from '../tools/directory/embedded.js';
import { EmbeddedDirectory } from '../tools/directory/embedded.js';
import { EmbeddedFactors } from '../tools/factors/embedded.js';
import { EmbeddedKb } from '../tools/kb/embedded.js';
import type { Synonyms } from '../tools/kb/synonyms.js';
import { EmbeddedOutbox } from '../tools/outbox/embedded.js';
import { EmbeddedDeploy } from '../tools/software/embedded.js';
import { EmbeddedTickets } from '../tools/tickets/embedded.js';

/** Where the embedded backends' tables and the records live: the process's store. */

/** The IT vocabulary the KB searches with (`kb import` replaces it). */
export interface KbVocabulary {
  current(): Awaitable<Synonyms>;
  /** Where it comes from (the shipped file, or an import and when). */
  source(): Awaitable<string>;
  /** Validates and stores a vocabulary file (an invalid one throws and changes nothing). */
  put(text: string, source: string): Awaitable<Synonyms>;
}

/** The embedded adapters and their tables: always there (demo data, `kb import`, the CLI's lists, tests). */
export interface Embedded {
  kb: KbPort & {
    /** Adds or replaces articles by id. */
    upsert(articles: Article[]): Awaitable<{ added: number; updated: number }>;
    /** The search without a call's options (tests). */
    find(query: string, limit: number): Awaitable<KbHit[]>;
    readonly synonyms: KbVocabulary;
  };
  tickets: TicketsPort & { count(): Awaitable<number> };
  directory: DirectoryPort & {
    /** By username only. */
    user(username: string): Awaitable<User | undefined>;
    /** Every user, by username. */
    list(): Awaitable<User[]>;
  };
  deploy: DeployPort & {
    /** Install jobs, newest first. */
    jobs(username?: string): Awaitable<InstallJob[]>;
  };
  outbox: OutboxPort;
  factors: FactorsPort;
  /** The record of every delivery (the embedded outbox's mailbox). */
  deliveries: DeliveriesPort;
  /** One-time reset links. */
  resets: ResetLinksPort;
  /** Install jobs of a remote deployment system (Intune). */
  deployJobs: DeployJobsPort;
}

/** The embedded adapters on the SQLite file's tables (PostgreSQL: embedded-postgres.ts, loaded only there). */
export function embeddedSqlite(db: Db, now: () => number): Embedded {
  const deliveries = new OutboxStore(db, now);
  return {
    kb: new EmbeddedKb(db),
    tickets: new EmbeddedTickets(db, now),
    directory: new EmbeddedDirectory(db, now),
    deploy: new EmbeddedDeploy(db, now),
    outbox: new EmbeddedOutbox(deliveries),
    factors: new EmbeddedFactors(new MfaStore(db, now)),
    deliveries,
    resets: new ResetStore(db, now),
    deployJobs: new DeployJobsStore(db, now),
  };
}
