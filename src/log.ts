/**
 * pino to file descriptor 2: in stdio mode stdout carries only MCP frames. Secrets are redacted by path. JSON lines
 * when stderr is a file or a pipe; readable lines (src/log-pretty.ts) when it is a terminal (DESIGN §6).
 */
import { config } from './config.js';
import pino, { type Logger } from 'pino';
import { prettyDestination } from './log-pretty.js';

export const REDACT_PATHS = [
  'token',
  'password',
  'code',
  'otp',
  'link',
  'secret',
  '*.token',
  '*.password',
  '*.code',
  '*.otp',
  '*.link',
  '*.secret',
  'req.headers.authorization',
  'req.headers.cookie',
];

export function createLogger(
  level = config().logLevel ?? 'info',
  opts: { pretty?: boolean } = { pretty: process.stderr.isTTY === true },
): Logger {
  const dest = opts.pretty
    ? prettyDestination(2, process.stderr.hasColors?.() ?? false) // hasColors honours NO_COLOR and FORCE_COLOR
    : pino.destination({ dest: 2, sync: true });
  return pino({ name: 'itguard', level, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } }, dest);
}
