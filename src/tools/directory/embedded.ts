/**
 * The embedded directory adapter (demo data on a new database): users, groups, recovery channels and password
 * hashes in the itguard database. A reset replaces the password with a random one nobody sees and flags
 * must-change; the one-time link flow above the port (tools/password/reset-flow.ts) lets the user choose a new one.
 */
import { randomBytes } from 'node:crypto';
import { BackendError, type CallOpts, type ProbeReport, type WriteOpts } from '../../core/backend.js';
import type { Statement } from '../../store/sqlite/db.js';
import { effectCommit, type Db } from '../../store/sqlite/db.js';
import type { DirectoryPort } from '../../core/ports/directory.js';
import { hashPassword, toUser, type Row, type User } from './rows.js';

export type { User } from './rows.js';

export class EmbeddedDirectory implements DirectoryPort {
  readonly kind = 'embedded';
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  /** By username, or by mail when no username matches. */
  async get(user: string, _o?: CallOpts): Promise<User | undefined> {
    return this.user(user) ?? this.byMail(user);
  }

  /** The old password stops working (an unguessable random one nobody sees replaces it) and must-change is set. */
  async lockForReset(username: string, _o: WriteOpts): Promise<void> {
    const hash = hashPassword(randomBytes(32).toString('base64url'));
    const changed = effectCommit(
      this.db,
      () =>
        this.db
          .prepare(
            'UPDATE dir_users SET password_hash = ?, must_change_password = 1, password_changed_at = ? WHERE username = ?',
          )
          .run(hash, this.now(), username).changes,
    );
    if (!changed) throw new BackendError(`user: no user "${username}" in the directory`, false, { field: 'user' });
  }

  /** The password the user chose on the one-time page, stored as an scrypt hash; must-change clears. */
  async setPassword(username: string, password: string, _o?: CallOpts): Promise<void> {
    const changed = this.db
      .prepare(
        'UPDATE dir_users SET password_hash = ?, must_change_password = 0, password_changed_at = ? WHERE username = ?',
      )
      .run(hashPassword(password), this.now(), username).changes;
    if (!changed) throw new BackendError(`user: no user "${username}" in the directory`, false, { field: 'user' });
  }

  async probe(_o: CallOpts): Promise<ProbeReport> {
    const n = this.list().length;
    return {
      backend: 'directory:embedded',
      target: 'the itguard database',
      ok: true,
      checks: [{ name: 'read users', ok: true, detail: `${n} user(s)` }],
    };
  }

  /** Embedded only (the CLI, tests): synchronous lookup by username. */
  user(username: string): User | undefined {
    // Prepared on first use and kept: the resolve step looks a user up on most calls.
    this.byNameStmt ??= this.db.prepare<[string], Row>('SELECT * FROM dir_users WHERE username = ?');
    const r = this.byNameStmt.get(username);
    return r && toUser(r);
  }

  private byNameStmt: Statement<[string], Row> | undefined;

  private byMail(mail: string): User | undefined {
    this.byMailStmt ??= this.db.prepare<[string], Row>(
      'SELECT * FROM dir_users WHERE lower(email) = lower(?) ORDER BY username LIMIT 1',
    );
    const r = this.byMailStmt.get(mail);
    return r && toUser(r);
  }

  private byMailStmt: Statement<[string], Row> | undefined;

  list(): User[] {
    return this.db.prepare<[], Row>('SELECT * FROM dir_users ORDER BY username').all().map(toUser);
  }

  insert(users: Omit<User, 'mustChangePassword'>[]): void {
    const ins = this.db.prepare(
      `INSERT OR IGNORE INTO dir_users (username, display_name, email, department, title, manager, groups, recovery_kind, recovery_address, disabled)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db
      .transaction(() => {
        for (const u of users) {
          ins.run(
            u.username,
            u.displayName,
            u.email,
            u.department,
            u.title,
            u.manager,
            u.groups.join(' '),
            u.recovery.kind,
            u.recovery.address,
            u.disabled ? 1 : 0,
          );
        }
      })
      .immediate();
  }
}
