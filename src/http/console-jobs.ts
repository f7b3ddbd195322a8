/**
 * The live state of approved installs for the console's recent requests. The executor records what the install
 * call answered when it ran ("requested and is pending — not installed yet"); the job moves on afterwards
 * (requested → pending → installed | failed | timed_out on Intune, queued → installing → installed embedded). For
 * each executed software_install the console reads the job through the deployment port (`jobState`, else
 * `findByRequest`, as request_status does) with a short deadline, so a slow or unreachable backend never holds
 * the page: then the recorded result is shown with a note saying the live state could not be read.
 */
import type { ApprovalRow } from '../store/ports/index.js';
import type { DeployPort } from '../core/ports/deploy.js';

/** How long the console waits for the deployment backend before showing the recorded result. */
export const JOB_STATE_TIMEOUT_MS = 1500;

export type LiveJob =
  | { kind: 'job'; id: string; state: string; updatedAt: string; error?: string | undefined }
  /** The backend answered: no job for this request (the recorded result stands, nothing to note). */
  | { kind: 'none' }
  /** The backend did not answer in time or failed: the recorded result stands, with this note. */
  | { kind: 'unavailable'; why: string };

/** Requests whose install job the console reads: software_install runs that finished with a result. */
export const hasJob = (r: ApprovalRow): boolean =>
  r.tool === 'software_install' && r.status === 'succeeded' && r.request_id !== null;

async function one(deploy: DeployPort, requestId: string, timeoutMs: number): Promise<LiveJob> {
  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // The deadline holds even for an adapter that ignores the signal.
  const deadline = new Promise<LiveJob>((resolve) => {
    timer = setTimeout(() => {
      resolve({ kind: 'unavailable', why: `the deployment backend did not answer within ${timeoutMs} ms` });
      ac.abort(new Error('timed out'));
    }, timeoutMs);
  });
  const read = (deploy.jobState ?? deploy.findByRequest).call(deploy, requestId, { signal: ac.signal }).then(
    (j): LiveJob =>
      j
        ? { kind: 'job', id: j.id, state: j.state, updatedAt: j.updatedAt, ...(j.error ? { error: j.error } : {}) }
        : { kind: 'none' },
    (): LiveJob => ({ kind: 'unavailable', why: 'the deployment backend could not be read' }),
  );
  try {
    return await Promise.race([read, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The live job of each executed install among `rows`, by approval id, read in parallel. */
export async function liveJobs(
  deploy: DeployPort,
  rows: readonly ApprovalRow[],
  timeoutMs = JOB_STATE_TIMEOUT_MS,
): Promise<Map<string, LiveJob>> {
  const wanted = rows.filter(hasJob);
  const states = await Promise.all(wanted.map((r) => one(deploy, r.request_id!, timeoutMs)));
  return new Map(wanted.map((r, i) => [r.id, states[i]!]));
}
