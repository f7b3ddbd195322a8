/** pino to file descriptor 2: in stdio mode stdout carries only MCP frames. Secrets are redacted by path. */
import { config } from './config.js';
import pino, { type Logger } from 'pino';

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

export function createLogger(level = config().logLevel ?? 'info'): Logger {
  return pino(
    { name: 'itguard', level, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } },
    pino.destination({ dest: 2, sync: true }),
  );
}
