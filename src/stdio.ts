/**
 * The stdio transport: newline-delimited JSON-RPC on stdin and stdout, in place of the SDK's StdioServerTransport,
 * which one bad line takes down. Its ReadBuffer throws once 10 MB are buffered without a newline, the transport
 * closes and pauses stdin, and the process lingers deaf (stdin never ends, the verification listener keeps it up);
 * lines that are not JSON or not JSON-RPC go to onerror, so the client waits forever for an answer.
 *
 * Here:
 *  - a line longer than MAX_LINE_BYTES is discarded as it streams in (only its first HEAD_BYTES are kept, to find
 *    its id) and answered with -32600 "request too large"; the next line is served as usual;
 *  - every line goes through checkLine (jsonrpc-check.ts): -32700 / -32600 / -32602 for requests, a debug log for
 *    bad notifications and responses; only what passes reaches the SDK;
 *  - outgoing errors that carry a zod issue dump are cut to one line (tidyError).
 * stdout carries only these frames; logs go to stderr through the logger.
 *
 * It is the wire under the SDK's dual-era stdio entry (`serveStdio(factory, { transport })`, commands/serve.ts):
 * the entry starts it, reads every message that passes the checks, picks the era from the opening message
 * (`initialize` → 2025-11-25, a `_meta` envelope claim → 2026-07-28) and closes it when the connection ends.
 */
import process from 'node:process';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';
import { checkLine, errorReply, INVALID_REQUEST, recoverId, tidyError } from './jsonrpc-check.js';

/**
 * 4 MiB. The largest message a client has reason to send is a tools/call or an elicitation answer: tool inputs are
 * bounded far below this (the HTTP body limit is 1 MB). One line in flight is held in memory whole, so this is also
 * the most one client can make us buffer.
 */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** Bytes kept from the start of an oversized line to recover its id; `{"jsonrpc":"2.0","id":...` fits easily. */
const HEAD_BYTES = 1024;
const NL = 0x0a;

export interface StdioOptions {
  stdin?: Readable;
  stdout?: Writable;
  log?: Pick<Logger, 'debug' | 'warn'>;
  maxLineBytes?: number;
}

export class LineStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  private readonly stdin: Readable;
  private readonly stdout: Writable;
  private readonly log: StdioOptions['log'];
  private readonly max: number;
  private parts: Buffer[] = [];
  private size = 0;
  /** Set while the rest of an oversized line is skipped. */
  private skipping: { head: Buffer; bytes: number } | undefined;
  private started = false;

  constructor(opts: StdioOptions = {}) {
    this.stdin = opts.stdin ?? process.stdin;
    this.stdout = opts.stdout ?? process.stdout;
    this.log = opts.log;
    this.max = opts.maxLineBytes ?? MAX_LINE_BYTES;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('LineStdioTransport already started');
    this.started = true;
    this.stdin.on('data', this.onData);
    this.stdin.on('end', this.onEnd);
    this.stdin.on('error', this.onStreamError);
    this.stdout.on('error', this.onStreamError);
  }

  private readonly onStreamError = (e: Error) => this.onerror?.(e);

  private readonly onData = (chunk: Buffer | string) => {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(NL, start);
      const piece = buf.subarray(start, nl === -1 ? buf.length : nl);
      this.take(piece);
      if (nl === -1) return;
      this.endLine();
      start = nl + 1;
    }
  };

  /** A line without its final newline when stdin ends is still a line. */
  private readonly onEnd = () => {
    if (this.size > 0 || this.skipping) this.endLine();
  };

  private take(piece: Buffer): void {
    if (this.skipping) {
      this.skipping.bytes += piece.length;
      return;
    }
    if (this.size + piece.length <= this.max) {
      if (piece.length) this.parts.push(piece);
      this.size += piece.length;
      return;
    }
    // Over the limit: keep the head for the id, let go of the rest.
    const head = Buffer.concat([...this.parts, piece.subarray(0, HEAD_BYTES)]).subarray(0, HEAD_BYTES);
    this.skipping = { head: Buffer.from(head), bytes: this.size + piece.length };
    this.parts = [];
    this.size = 0;
  }

  private endLine(): void {
    if (this.skipping) {
      const { head, bytes } = this.skipping;
      this.skipping = undefined;
      const id = recoverId(head.toString('utf8'));
      this.log?.warn({ bytes, limit: this.max, id }, 'stdio: discarded a line over the line limit');
      void this.write(errorReply(id, INVALID_REQUEST, `request too large (limit ${this.max} bytes)`));
      return;
    }
    const line = Buffer.concat(this.parts, this.size).toString('utf8').replace(/\r$/, '');
    this.parts = [];
    this.size = 0;
    if (!line.trim()) return;
    const c = checkLine(line);
    if (c.kind === 'pass') this.onmessage?.(c.message);
    else if (c.kind === 'reply') {
      this.log?.debug(
        { code: c.reply.error.code, id: c.reply.id, why: c.reply.error.message },
        'stdio: answered an invalid request',
      );
      void this.write(c.reply);
    } else this.log?.debug({ why: c.why }, 'stdio: dropped an invalid notification or response');
  }

  send(message: JSONRPCMessage): Promise<void> {
    const { message: out, dump } = tidyError(message);
    if (dump) this.log?.debug({ dump }, 'stdio: replaced a schema dump in an error reply');
    return this.write(out);
  }

  private wrote!: () => void;
  /** Resolves once the first message has been written (serve starts what the first answer does not need after it). */
  readonly firstWrite = new Promise<void>((resolve) => (this.wrote = resolve));

  private write(message: object): Promise<void> {
    this.wrote();
    return new Promise((resolve) => {
      if (this.stdout.write(`${JSON.stringify(message)}\n`)) resolve();
      else this.stdout.once('drain', resolve);
    });
  }

  async close(): Promise<void> {
    this.stdin.off('data', this.onData);
    this.stdin.off('end', this.onEnd);
    this.stdin.off('error', this.onStreamError);
    this.stdout.off('error', this.onStreamError);
    if (this.stdin.listenerCount('data') === 0) this.stdin.pause();
    this.parts = [];
    this.size = 0;
    this.skipping = undefined;
    this.onclose?.();
  }
}
