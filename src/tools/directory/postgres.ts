/**
 * The directory port on the PostgreSQL store (issue 20): the embedded directory's table (dir_users) and behaviour
 * (embedded.ts), shared by every replica. A lookup is by username, else by mail (case-insensitive, the first
 * username when several share it), in one query. A reset lock replaces the password hash with one of a random
 * password nobody sees and sets must-change; setPassword stores the chosen one as an scrypt hash. Any store failure
 * is a BackendError saying whether the call may be retried.
 */
import { randomBytes } from 'node:crypto';
import type { ISql } from 'postgres';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import type { DirectoryPort } from '../../core/ports/directory.js';
import { type PgStore, toPgStoreError } from '../../store/postgres/connect.js';
import { guarded } from '../pg-errors.js';
import { hashPassword, toUser, type Row, type User } from './rows.js';

export type { User } from './rows.js';

const COLUMNS =
  'username, display_name, email, department, title, manager, groups, recovery_kind, recovery_address, disabled, must_change_password';

const noUser = (username: string) =>
  new BackendError(`user: no user "${username}" in the directory`, false, { field: 'user' });

export class PostgresDirectory implements DirectoryPort {
  readonly kind = 'postgres';
  constructor(
    private readonly store: PgStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** By username, or by mail when no username matches. */
  async get(user: string, o: CallOpts): Promise<User | undefined> {
    return guarded(this.store, 'directory', async () => {
      const [r] = await this.store.sql<Row[]>`
        SELECT ${this.store.sql.unsafe(COLUMNS)} FROM dir_users
         WHERE username = ${user} OR lower(email) = lower(${user})
         ORDER BY (username = ${user}) DESC, username COLLATE "C"
         LIMIT 1`.signal(o.signal);
      return r && toUser(r);
    });
  }

  /** The old password stops working (an unguessable random one nobody sees replaces it) and must-change is set. */
  async lockForReset(username: string, o: WriteOpts): Promise<void> {
    const hash = hashPassword(randomBytes(32).toString('base64url'));
    const changed = await guarded(this.store, 'directory', async () => {
      const r = await this.store.sql`
        UPDATE dir_users SET password_hash = ${hash}, must_change_password = 1, password_changed_at = ${this.now()}
         WHERE username = ${username}`.signal(o.signal);
      return r.count;
    });
    if (!changed) throw noUser(username);
  }

  /** The password the user chose on the one-time page, stored as an scrypt hash; must-change clears. */
  async setPassword(username: string, password: string, o: CallOpts): Promise<void> {
    const hash = hashPassword(password);
    const changed = await guarded(this.store, 'directory', async () => {
      const r = await this.store.sql`
        UPDATE dir_users SET password_hash = ${hash}, must_change_password = 0, password_changed_at = ${this.now()}
         WHERE username = ${username}`.signal(o.signal);
      return r.count;
    });
    if (!changed) throw noUser(username);
  }

  async probe(o: CallOpts): Promise<ProbeReport> {
    try {
      const [r] = await this.store.sql<{ n: number }[]>`SELECT count(*)::INT AS n FROM dir_users`.signal(o.signal);
      return {
        backend: 'directory:postgres',
        target: this.store.target,
        ok: true,
        checks: [{ name: 'read users', ok: true, detail: `${r!.n} user(s)` }],
      };
    } catch (e) {
      return {
        backend: 'directory:postgres',
        target: this.store.target,
        ok: false,
        checks: [{ name: 'read users', ok: false, detail: toPgStoreError(this.store.target, e).message }],
      };
    }
  }

  /** By username only (the CLI, tests), as EmbeddedDirectory.user. */
  async user(username: string): Promise<User | undefined> {
    return guarded(this.store, 'directory', async () => {
      const [r] = await this.store.sql<Row[]>`
        SELECT ${this.store.sql.unsafe(COLUMNS)} FROM dir_users WHERE username = ${username}`;
      return r && toUser(r);
    });
  }

  /** Every user, by username (the CLI, tests). */
  async list(): Promise<User[]> {
    return guarded(this.store, 'directory', async () =>
      (
        await this.store.sql<Row[]>`
          SELECT ${this.store.sql.unsafe(COLUMNS)} FROM dir_users ORDER BY username COLLATE "C"`
      ).map(toUser),
    );
  }

  /** Adds users that are not there yet (the demo seed); existing usernames are left as they are. */
  async insert(users: Omit<User, 'mustChangePassword'>[], sql: ISql = this.store.sql): Promise<number> {
    if (!users.length) return 0;
    const rows = users.map((u) => ({
      username: u.username,
      display_name: u.displayName,
      email: u.email,
      department: u.department,
      title: u.title,
      manager: u.manager,
      groups: u.groups.join(' '),
      recovery_kind: u.recovery.kind,
      recovery_address: u.recovery.address,
      disabled: u.disabled ? 1 : 0,
    }));
    return guarded(this.store, 'directory', async () => {
      const r = await sql`INSERT INTO dir_users ${sql(rows)} ON CONFLICT (username) DO NOTHING`;
      return r.count;
    });
  }
}
