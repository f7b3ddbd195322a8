/**
 * The /mcp JSON body on its common path, without body-parser's machinery: an uncompressed `application/json` body
 * (UTF-8 or no charset) with a Content-Length within the limit, read, decoded and parsed here, as express.json would
 * (an empty body is `{}`; a body that is not a JSON object or array, or not JSON, is a parse error). Everything else
 * (a compressed or chunked body, another type or charset, a declared length over the limit) goes to `fallback`,
 * express.json itself, so its answers for those stay exactly as they were. Errors carry body-parser's `status` and
 * `type`, so errors.ts answers them the same way.
 */
import type { RequestHandler } from 'express';

class BodyError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const decoder = new TextDecoder(); // UTF-8; a leading BOM is dropped and bad bytes become U+FFFD, as iconv-lite does

export function leanJson(limitBytes: number, fallback: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const h = req.headers;
    const ct = h['content-type'];
    const semi = ct === undefined ? -1 : ct.indexOf(';');
    const media = ct === undefined ? '' : (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase();
    const params =
      semi < 0 || ct === undefined
        ? ''
        : ct
            .slice(semi + 1)
            .trim()
            .toLowerCase();
    const length = Number(h['content-length']);
    const simple =
      media === 'application/json' &&
      (params === '' || params === 'charset=utf-8' || params === 'charset="utf-8"') &&
      (h['content-encoding'] === undefined || h['content-encoding'].toLowerCase() === 'identity') &&
      h['transfer-encoding'] === undefined &&
      Number.isSafeInteger(length) &&
      length >= 0 &&
      length <= limitBytes;
    if (!simple) return fallback(req, res, next);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: BodyError) => {
      if (done) return;
      done = true;
      req.off('data', onData).off('end', onEnd).off('error', onBroken).off('aborted', onBroken);
      if (err) {
        req.resume(); // read off whatever is left, as body-parser does
        return next(err);
      }
      next();
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > length)
        return finish(new BodyError(400, 'request.size.invalid', 'request size did not match content length'));
      chunks.push(c);
    };
    const onEnd = () => {
      if (size !== length)
        return finish(new BodyError(400, 'request.size.invalid', 'request size did not match content length'));
      const text = decoder.decode(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
      let body: unknown;
      try {
        body = parse(text);
      } catch {
        return finish(new BodyError(400, 'entity.parse.failed', 'the body is not valid JSON'));
      }
      req.body = body;
      finish();
    };
    const onBroken = () => finish(new BodyError(400, 'request.aborted', 'request aborted'));
    req.on('data', onData).on('end', onEnd).on('error', onBroken).on('aborted', onBroken);
  };
}

/** express.json's strict parse: an empty body is {}, and the text must be an object or an array. */
function parse(text: string): unknown {
  if (text.length === 0) return {};
  const first = /\S/.exec(text)?.[0];
  if (first !== '{' && first !== '[') throw new SyntaxError('not a JSON object or array');
  return JSON.parse(text);
}
