/** A delivery attempt that failed: whether another attempt may succeed, and how long the peer asked us to wait. */
export class SendError extends Error {
  override readonly name = 'SendError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}
