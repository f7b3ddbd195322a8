/** Who holds an in-flight record or a running approval: this process (host:pid:nonce), and whether another holder is gone. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export const OWNER = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

/** Whether the process that owns an in-flight record is certainly gone. */
export function ownerIsGone(owner: string): boolean {
  if (owner === OWNER) return false;
  const [host, pid] = owner.split(':');
  if (host !== hostname()) return false; // another host: only the lease can tell
  try {
    process.kill(Number(pid), 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  return isZombie(Number(pid)); // alive (or reused pid: the lease decides), unless it died and awaits its parent
}

/** Linux: a process killed but not yet reaped by its parent still answers kill(0); /proc says it is a zombie. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}
