/**
 * MRTR state (DESIGN §4, §6): on 2026-07-28 connections a human gate answers with an `input_required` result and
 * the client retries the call with `inputResponses` and the `requestState` echoed. The state is the SDK's
 * HMAC-signed codec (`createRequestStateCodec`), short-lived, and carries only a pointer: the approval request, the
 * principal, the tool, the arguments' binding hash and a one-time nonce. The approval record stays the single
 * source of truth; a state is accepted once (its nonce is taken in the same transaction that checks it).
 *
 * The key: `ITGUARD_STATE_KEY`, shared by every process and replica. Without it a key is generated once and kept
 * in the database (stdio, and the demo over HTTP); `serve --http` on a real policy requires the variable.
 */
import { randomBytes } from 'node:crypto';
import { createRequestStateCodec, type RequestStateCodec } from '@modelcontextprotocol/server';

/** How long a client has to answer one round. */
export const STATE_TTL_SECONDS = 300;

export interface StatePayload {
  /** approval request id */
  a: string;
  /** principal */
  p: string;
  /** tool */
  t: string;
  /** binding hash of the arguments */
  h: string;
  /** one-time nonce, matched against the approval record's current one */
  n: string;
  /** the prompt this round asked: confirm | mfa-form | mfa-url */
  k: string;
}

export interface StateCodec {
  mint(p: StatePayload): Promise<string>;
  /** The payload, or undefined when the state is malformed, tampered with or expired. */
  verify(raw: string): Promise<StatePayload | undefined>;
}

const META_KEY = 'mrtr_state_key';

/**
 * Where the key is kept when the environment gives none: the store's small facts about itself, read and written
 * once at start (the SQLite adapter's `meta` table; app.ts wires it).
 */
export interface StateKeyStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

/** The key from the environment, else the one kept in the database (made on first use). */
export function stateKey(fromEnv: Uint8Array | undefined, meta: StateKeyStore): Uint8Array {
  if (fromEnv) return fromEnv;
  let hex = meta.get(META_KEY);
  if (!hex) {
    meta.set(META_KEY, randomBytes(32).toString('hex'));
    hex = meta.get(META_KEY)!; // another process may have written first: its key wins for everyone
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export function stateCodec(key: Uint8Array, ttlSeconds = STATE_TTL_SECONDS): StateCodec {
  const codec: RequestStateCodec<StatePayload> = createRequestStateCodec<StatePayload>({ key, ttlSeconds });
  return {
    mint: (p) => codec.mint(p),
    async verify(raw) {
      try {
        const p = await codec.verify(raw, undefined as never);
        const ok =
          p &&
          ['a', 'p', 't', 'h', 'n', 'k'].every((k) => typeof (p as unknown as Record<string, unknown>)[k] === 'string');
        return ok ? p : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
