/**
 * The directory port: users, groups and password resets, for every directory adapter (embedded, LDAP / Active
 * Directory). Denied target groups, "disabled users are refused" and the one-time link flow are enforced above it.
 */
import type { CallOpts, ProbeReport, WriteOpts } from '../backend.js';

export interface DirectoryUser {
  username: string;
  displayName: string;
  email: string;
  /** Group names (LDAP: the cn of each group the user is a member of). */
  groups: string[];
  /** Where reset links go: the recovery attribute (default mail). */
  recovery: { kind: 'email' | 'sms'; address: string } | undefined;
  disabled: boolean;
  mustChangePassword: boolean;
}

export interface DirectoryPort {
  readonly kind: string;
  /** By username (uid / sAMAccountName) or by mail; undefined when there is no such user. */
  get(user: string, o: CallOpts): Promise<DirectoryUser | undefined>;
  /**
   * Locks the old password out: sets an unguessable random password nobody sees and must-change-at-next-login
   * (OpenLDAP: pwdReset TRUE; AD: unicodePwd over LDAPS and pwdLastSet 0). Idempotent on requestId where the
   * directory allows; a repeat is harmless (a new random password nobody sees).
   */
  lockForReset(username: string, o: WriteOpts): Promise<void>;
  /** Sets the password the user chose on the one-time reset page; itguard never stores it. */
  setPassword(username: string, password: string, o: CallOpts): Promise<void>;
  probe(o: CallOpts): Promise<ProbeReport>;
  /**
   * Directories that mail the reset link themselves (Okta): the reset is this one call, the link never passes
   * through itguard, and `lockForReset`/`setPassword` are not used. Returns the address the directory mailed.
   */
  readonly mailsResetLink?: boolean;
  resetByEmail?(username: string, o: WriteOpts): Promise<{ address: string }>;
}
