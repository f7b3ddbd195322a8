/** The directory's user rows, their mapping and password hashing, shared by both embedded directory adapters. */
import { randomBytes, scryptSync } from 'node:crypto';
import type { DirectoryUser } from '../../core/ports/directory.js';

export interface User extends DirectoryUser {
  department: string;
  title: string;
  manager: string | null;
  recovery: { kind: 'email' | 'sms'; address: string };
}

export interface Row {
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

export const toUser = (r: Row): User => ({
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

/** An scrypt hash with a fresh salt: `scrypt$<salt>$<hash>` (base64). */
export const hashPassword = (password: string): string => {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('base64')}$${scryptSync(password, salt, 32).toString('base64')}`;
};
