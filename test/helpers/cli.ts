/** Runs the built CLI (dist/cli.js) as a user would: `npm test` builds it first. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export function runCli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Served {
  proc: ChildProcess;
  url: string;
  /** The demo token from the first-start banner, when the database was new. */
  demoToken: string | undefined;
  stderr: () => string;
  stop: () => Promise<void>;
}

export const TEST_STATE_KEY = 'ab'.repeat(32);

/** Starts `itguard serve --http --port 0` and waits for its URL. */
export async function serveHttp(db: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Served> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--http', '--port', '0', '--db', db, ...extra], {
    // Every replica of a real deployment shares one MRTR state key; the tests' servers get a fixed one.
    env: { ...process.env, ITGUARD_LOG_LEVEL: 'info', ITGUARD_STATE_KEY: TEST_STATE_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start:\n${err}`)), 15_000);
    const check = () => {
      const m = /"url":"(http:\/\/[^"]+\/mcp)"/.exec(err);
      if (
        m &&
        (err.includes('==========') || err.includes('create a token') || err.includes('static tokens are off'))
      ) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    };
    proc.stderr!.on('data', check);
    proc.once('exit', (c) => reject(new Error(`server exited ${c}:\n${err}`)));
  });
  const demoToken = /demo token: (\S+)/.exec(err)?.[1];
  return {
    proc,
    url,
    demoToken,
    stderr: () => err,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}
