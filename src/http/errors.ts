/**
 * The HTTP error handler. A client mistake caught by a parser or the router (bad percent-encoding in a path,
 * a body that is not JSON or does not decompress, an unsupported Content-Encoding or charset, a body too large)
 * carries a 4xx status: it is answered with that status and a short body of our own words, and logged at debug
 * without a stack — it says nothing about the server's health. A store that cannot be reached or is busy (a
 * PostgreSQL outage, a SQLite file locked beyond its busy timeout) refuses the request: 503 with Retry-After, the
 * reason in words, nothing served (fail closed). Anything else is a 500, logged with its stack.
 * /mcp gets JSON-RPC error bodies; the pages (/verify, /reset, /console) get an HTML page.
 */
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { esc, page, pageHeaders } from './verify.js';

interface HttpError {
  status?: unknown;
  statusCode?: unknown;
  type?: unknown;
  name?: unknown;
  code?: unknown;
}

/**
 * The store's refusals: PgStoreError and the SQLite adapter's DatabaseError; SQLite's own busy/locked errors; the
 * PostgreSQL client's (postgres.js) server errors and lost or refused connections.
 */
const STORE_CODES =
  /^(SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN)|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|CONNECTION_(CLOSED|DESTROYED|ENDED)|CONNECT_TIMEOUT)/;
const isStoreError = (err: HttpError): boolean =>
  err.name === 'DatabaseError' ||
  err.name === 'PostgresError' ||
  (typeof err.code === 'string' && STORE_CODES.test(err.code));
const STORE_RETRY_S = 5;

/** What the client is told, by body-parser's error type; never the raw message, which may echo its headers. */
function describe(status: number, type: unknown): { code: number; message: string } {
  switch (type) {
    case 'entity.parse.failed':
      return { code: -32700, message: 'Parse error: the body is not valid JSON' };
    case 'entity.too.large':
      return { code: -32000, message: 'Request body too large' };
    case 'encoding.unsupported':
      return {
        code: -32000,
        message: 'Unsupported Content-Encoding: send the body uncompressed, or with gzip, deflate or br',
      };
    case 'charset.unsupported':
      return { code: -32000, message: 'Unsupported charset: send UTF-8' };
  }
  // body-parser's other 400s: the body did not decompress, was cut short, or its length was wrong.
  if (status === 400 && typeof type !== 'string')
    return { code: -32700, message: 'Parse error: the body could not be read' };
  return { code: -32000, message: status === 400 ? 'Bad request' : `Request refused (HTTP ${status})` };
}

const statusOf = (err: HttpError): number | undefined => {
  const s = err.status ?? err.statusCode;
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s < 500 ? s : undefined;
};

function sendPage(res: Response, status: number, path: string): void {
  pageHeaders(res);
  const link = path.startsWith('/verify') || path.startsWith('/reset');
  const body = link
    ? '<h1>This link is not valid</h1><p>It is not a well-formed itguard link: check that it was copied whole. Nothing was changed.</p>'
    : `<h1>Bad request</h1><p>The server could not read this request (HTTP ${esc(status)}). Nothing was changed.</p>`;
  res
    .status(status)
    .type('html')
    .send(page(link ? 'Link not valid' : 'Bad request', body));
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: HttpError, req, res, _next) => {
    const path = req.originalUrl.split('?')[0] ?? '';
    const status = statusOf(err);
    if (status === undefined && isStoreError(err)) {
      log.warn({ err, path: path.slice(0, 200) }, 'request refused: the store cannot be used');
      if (!res.headersSent)
        res
          .status(503)
          .set('Retry-After', String(STORE_RETRY_S))
          .json({
            jsonrpc: '2.0',
            error: {
              code: -32000,
              message: `itguard's store cannot be reached, so nothing was done (fail closed); retry in ${STORE_RETRY_S} s`,
            },
            id: null,
          });
      return;
    }
    if (status === undefined) {
      log.error({ err, path: path.slice(0, 200) }, 'http error');
      if (!res.headersSent)
        res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null });
      return;
    }
    log.debug(
      { status, type: err.type, method: req.method, path: path.slice(0, 200) },
      'http request refused by a parser',
    );
    if (res.headersSent) return;
    if (path.startsWith('/mcp'))
      return void res.status(status).json({ jsonrpc: '2.0', error: describe(status, err.type), id: null });
    sendPage(res, status, path);
  };
}
