/**
 * The embedded directory of users (demo data on a new database), with password reset: the account is flagged
 * must-change-at-next-login and a one-time reset link is delivered through the outbox to the user's recovery
 * channel. Only the link's hash is kept here; the result names the channel, masked.
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { sha256 } from '../../canonical.js';
import type { Db } from '../../store/db.js';

export interface User {
  username: string;
  displayName: string;
  email: string;
  department: string;
  title: string;
  manager: string | null;
  groups: string[];
  recovery: { kind: 'email' | 'sms'; address: string };
  disabled: boolean;
  mustChangePassword: boolean;
}

export interface ResetOutcome {
  username: string;
  /** e.g. "j***@example.com" or "+1-***-**34" */
  maskedChannel: string;
  channel: 'email' | 'sms';
  at: string;
}

export interface DirectoryBackend {
  get(username: string): User | undefined;
  list(): User[];
  /** Idempotent on requestId: a second call with the same id returns the first outcome and sends nothing. */
  resetPassword(username: string, o: { requestId: string | undefined; resetBaseUrl: string }): ResetOutcome;
  findReset(requestId: string): ResetOutcome | undefined;
  /** The one-time reset page: what a link is for, and setting the new password through it (once). */
  resetLink(token: string): ResetLink | undefined;
  completeReset(token: string, password: string): boolean;
}

/** The one-time reset page's view of a link. */
export interface ResetLink {
  username: string;
  expiresAt: number;
  usable: boolean;
}

export function maskAddress(kind: 'email' | 'sms', address: string): string {
  if (kind === 'email') {
    const [local = '', domain = ''] = address.split('@');
    return `${local.slice(0, 1)}***@${domain}`;
  }
  const digits = address.replace(/\D/g, '');
  return `${address.startsWith('+') ? '+' : ''}${digits.slice(0, 1)}-***-**${digits.slice(-2)}`;
}

const RESET_LINK_TTL_MS = 24 * 3600_000;

interface Row {
  username: string;
  display_name: string;
  email: string;
  department: string;
  title: string;
  manager: string | null;
  groups: string;
  recovery_kind: 'email' | 'sms';
  recovery_address: string;
  disabled: number;
  must_change_password: number;
}

const toUser = (r: Row): User => ({
  username: r.username,
  displayName: r.display_name,
  email: r.email,
  department: r.department,
  title: r.title,
  manager: r.manager,
  groups: r.groups.split(' ').filter(Boolean),
  recovery: { kind: r.recovery_kind, address: r.recovery_address },
  disabled: r.disabled === 1,
  mustChangePassword: r.must_change_password === 1,
});

export class EmbeddedDirectory implements DirectoryBackend {
  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {}

  resetPassword(username: string, o: { requestId: string | undefined; resetBaseUrl: string }): ResetOutcome {
    return this.db
      .transaction((): ResetOutcome => {
        if (o.requestId) {
          const prior = this.findReset(o.requestId);
          if (prior) return prior;
        }
        const u = this.get(username);
        if (!u) throw new Error(`no user ${username}`);
        const token = randomBytes(24).toString('base64url');
        const at = this.now();
        const link = `${o.resetBaseUrl.replace(/\/$/, '')}/reset/${token}`;
        const outboxId = Number(
          this.db
            .prepare(
              'INSERT INTO outbox (username, channel, address, subject, body, created_at, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
            )
            .run(
              username,
              u.recovery.kind,
              u.recovery.address,
              'Your Northwind password reset link',
              `Hello ${u.displayName}, IT reset your password. Set a new one within 24 hours at ${link} . If you did not ask for this, call the IT service desk.`,
              at,
              o.requestId ?? null,
            ).lastInsertRowid,
        );
        // A new reset revokes the user's older unused links: only the latest one works.
        this.db
          .prepare('UPDATE password_resets SET used_at = ? WHERE username = ? AND used_at IS NULL')
          .run(at, username);
        this.db
          .prepare(
            'INSERT INTO password_resets (token_hash, username, request_id, outbox_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
          )
          .run(sha256(token), username, o.requestId ?? null, outboxId, at, at + RESET_LINK_TTL_MS);
        this.db
          .prepare('UPDATE dir_users SET must_change_password = 1, password_changed_at = ? WHERE username = ?')
          .run(at, username);
        return {
          username,
          channel: u.recovery.kind,
          maskedChannel: maskAddress(u.recovery.kind, u.recovery.address),
          at: new Date(at).toISOString(),
        };
      })
      .immediate();
  }

  resetLink(token: string): ResetLink | undefined {
    const r = this.db
      .prepare<[string], { username: string; expires_at: number; used_at: number | null }>(
        'SELECT username, expires_at, used_at FROM password_resets WHERE token_hash = ?',
      )
      .get(sha256(token));
    return (
      r && { username: r.username, expiresAt: r.expires_at, usable: r.used_at === null && r.expires_at > this.now() }
    );
  }

  /** Sets the new password (scrypt) through a live one-time link and spends the link. False if the link is not usable. */
  completeReset(token: string, password: string): boolean {
    return this.db
      .transaction(() => {
        const link = this.resetLink(token);
        if (!link?.usable) return false;
        const salt = randomBytes(16);
        const hash = `scrypt$${salt.toString('base64')}$${scryptSync(password, salt, 32).toString('base64')}`;
        const at = this.now();
        this.db.prepare('UPDATE password_resets SET used_at = ? WHERE token_hash = ?').run(at, sha256(token));
        this.db
          .prepare(
            'UPDATE dir_users SET password_hash = ?, must_change_password = 0, password_changed_at = ? WHERE username = ?',
          )
          .run(hash, at, link.username);
        return true;
      })
      .immediate();
  }

  findReset(requestId: string): ResetOutcome | undefined {
    const r = this.db
      .prepare<[string], { username: string; channel: 'email' | 'sms'; address: string; created_at: number }>(
        'SELECT username, channel, address, created_at FROM outbox WHERE request_id = ?',
      )
      .get(requestId);
    return (
      r && {
        username: r.username,
        channel: r.channel,
        maskedChannel: maskAddress(r.channel, r.address),
        at: new Date(r.created_at).toISOString(),
      }
    );
  }

  get(username: string): User | undefined {
    const r = this.db.prepare<[string], Row>('SELECT * FROM dir_users WHERE username = ?').get(username);
    return r && toUser(r);
  }

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
