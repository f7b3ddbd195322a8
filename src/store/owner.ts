/** Who holds an in-flight record or a running approval: this process (host:pid:nonce), and whether another holder is gone. */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

export const OWNER = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

/** Whether the process that owns an in-flight record is certainly gone. */
export function ownerIsGone(owner: string): boolean {
  if (owner === OWNER) return false;
  const [host, pid] = owner.split(':');
  if (host !== hostname()) return false; // another host: only the lease can tell
  try {
    process.kill(Number(pid), 0);
    return false; // alive (or reused pid: the lease decides)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
