/**
 * The embedded adapters on a PostgreSQL store's tables (the same ports as backends/embedded.ts builds on SQLite).
 * Loaded only by a process on PostgreSQL (app-postgres.ts), so the SQLite path never loads the client.
 */
import type { PgStore } from '../store/postgres/connect.js';
import { PgDeliveries } from '../store/postgres/deliveries.js';
import { PgDeployJobs } from '../store/postgres/deploy-jobs.js';
import { PgFactorRecords } from '../store/postgres/mfa.js';
import { PgResetLinks } from '../store/postgres/resets.js';
import { PostgresDirectory } from '../tools/directory/postgres.js';
import { EmbeddedFactors } from '../tools/factors/embedded.js';
import { PostgresKb } from '../tools/kb/postgres.js';
import { PostgresOutbox } from '../tools/outbox/postgres.js';
import { PostgresDeploy } from '../tools/software/postgres.js';
import { PostgresTickets } from '../tools/tickets/postgres.js';
import type { Embedded } from './embedded.js';

export function embeddedPostgres(pg: PgStore, now: () => number): Embedded {
  const deliveries = new PgDeliveries(pg, now);
  return {
    kb: new PostgresKb(pg),
    tickets: new PostgresTickets(pg, now),
    directory: new PostgresDirectory(pg, now),
    deploy: new PostgresDeploy(pg, now),
    outbox: new PostgresOutbox(deliveries),
    factors: new EmbeddedFactors(new PgFactorRecords(pg, now)),
    deliveries,
    resets: new PgResetLinks(pg, now),
    deployJobs: new PgDeployJobs(pg, now),
  };
}
