/** Logs: JSON lines when stderr is a file or a pipe, readable lines when it is a terminal (DESIGN §6). */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prettyLine } from '../src/log-pretty.js';
import { CLI, TEST_STATE_KEY } from './helpers/cli.js';
import { tempDir } from './helpers/harness.js';

describe('prettyLine', () => {
  const t = Date.UTC(2026, 11, 6, 12, 3, 4, 567);
  it('prints time, level, message, then the other fields as key=value', () => {
    const line = JSON.stringify({
      level: 30,
      time: t,
      pid: 1,
      hostname: 'h',
      name: 'itguard',
      msg: 'serving',
      port: 3333,
    });
    expect(prettyLine(line)).toBe('12:03:04.567 INFO  serving  port=3333\n');
  });
  it('quotes text with spaces, escapes control characters, and puts an error stack below its line', () => {
    const line = JSON.stringify({
      level: 50,
      time: t,
      msg: 'call failed\u001b[2J',
      reason: 'a b',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.js:1:1)' },
    });
    expect(prettyLine(line)).toBe(
      '12:03:04.567 ERROR call failed\\x1b[2J  reason="a b" err="Error: boom"\n    Error: boom\n        at x (y.js:1:1)\n',
    );
  });
  it('colours only when asked, and passes a line that is not JSON through', () => {
    const line = JSON.stringify({ level: 40, time: t, msg: 'careful' });
    expect(prettyLine(line, { color: true })).toContain('\u001b[33mWARN ');
    expect(prettyLine('not json')).toBe('not json\n');
  });
  it('keeps what pino redacted redacted', () => {
    const line = JSON.stringify({ level: 30, time: t, msg: 'token made', token: '[REDACTED]' });
    expect(prettyLine(line)).toBe('12:03:04.567 INFO  token made  token=[REDACTED]\n');
  });
});

/** The real CLI with stderr a terminal (a pseudo-terminal from util-linux `script`) and with stderr a pipe. */
function serveFor(withTty: boolean): Promise<string> {
  const tmp = tempDir();
  const args = [CLI, 'serve', '--http', '--port', '0', '--db', join(tmp.dir, 'l.db')];
  const env = { ...process.env, ITGUARD_STATE_KEY: TEST_STATE_KEY, ITGUARD_LOG_LEVEL: 'info', NO_COLOR: '1' };
  const quoted = [process.execPath, ...args].map((a) => `'${a}'`).join(' ');
  const proc = withTty
    ? spawn('script', ['-qfec', quoted, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (proc.kill('SIGKILL'), reject(new Error(`no start:\n${text}`))), 20_000);
    const onData = (d: Buffer) => {
      text += d.toString();
      if (/serving MCP over Streamable HTTP/.test(text)) {
        clearTimeout(timer);
        proc.kill('SIGTERM');
        proc.once('exit', () => (tmp.cleanup(), resolve(text)));
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
  });
}

describe('the logger picks its format from stderr', () => {
  it('a terminal gets readable lines', async () => {
    const text = await serveFor(true);
    expect(text).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}itguard starting {2}policy="built-in demo policy"/m);
    expect(text).not.toMatch(/^\{"level"/m);
  });
  it('a pipe gets JSON lines', async () => {
    const text = await serveFor(false);
    expect(text).toMatch(/^\{"level":30,.*"msg":"itguard starting"/m);
  });
});
