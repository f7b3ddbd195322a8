/** The embedded directory of users (demo data on a new database). */
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

export interface DirectoryBackend {
  get(username: string): User | undefined;
  list(): User[];
}

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
  constructor(private readonly db: Db) {}

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
    this.db.transaction(() => {
      for (const u of users) {
        ins.run(u.username, u.displayName, u.email, u.department, u.title, u.manager, u.groups.join(' '), u.recovery.kind, u.recovery.address, u.disabled ? 1 : 0);
      }
    }).immediate();
  }
}
