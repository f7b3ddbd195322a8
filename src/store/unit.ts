/**
 * A unit of work (DESIGN §5 "A call is two units of work"): the state changes one step of a call's life makes,
 * committed together or not at all. The pipeline opens a call's two units (admission before the side effect,
 * settlement after it); the steps add operations to them; a store adapter runs a unit's operations, in the order
 * they were added, inside one transaction of its own (`UnitRunner.commit`). No port method opens a transaction
 * behind the pipeline's back: every write of guard state is an operation of some unit.
 *
 * An operation is a function the adapter calls inside the transaction with its transaction handle (`Tx`: nothing
 * for SQLite, whose connection is the transaction; a client for PostgreSQL). Operations run in order, so one may
 * read what an earlier one decided (a cap reservation runs only if the budget admitted the call). Each `add`
 * returns a promise of the operation's value that settles once the whole unit has committed — or rejects with the
 * unit's failure, in which case nothing of the unit was written (fail closed).
 */

/** The adapter's transaction handle, opaque above the store. */
export type Tx = unknown;
export type Op<T> = (tx: Tx) => T | Promise<T>;

export type UnitKind = 'admission' | 'settlement' | 'single';

interface Entry {
  run: Op<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  value?: unknown;
}

export class UnitOfWork {
  private entries: Entry[] = [];
  private committed = false;
  /**
   * Commit with an fsync under `durability: strict`: an audit intent (durable before its side effect), or the
   * outcome of an effect that started (which makes an embedded effect durable before its result is returned).
   */
  strict = false;

  constructor(readonly kind: UnitKind) {}

  /** Adds an operation; the promise settles with its value once the unit has committed. */
  add<T>(run: Op<T>): Promise<T> {
    if (this.committed) throw new Error(`the ${this.kind} unit has already been committed`);
    let entry!: Entry;
    const p = new Promise<T>((resolve, reject) => {
      entry = { run: run as Op<unknown>, resolve: resolve as (v: unknown) => void, reject };
    });
    p.catch(() => undefined); // a caller that does not await one operation still sees the unit's failure elsewhere
    this.entries.push(entry);
    return p;
  }

  get size(): number {
    return this.entries.length;
  }

  get isCommitted(): boolean {
    return this.committed;
  }

  /** Moves this unit's operations (none of which ran) to the front of `into`, and closes this unit. */
  moveInto(into: UnitOfWork): void {
    if (this.committed) return;
    into.entries.unshift(...this.entries);
    into.strict ||= this.strict;
    this.entries = [];
    this.committed = true;
  }

  /** Adapter: marks the unit as taken for commit (no operation may be added after). */
  take(): void {
    if (this.committed) throw new Error(`the ${this.kind} unit has already been committed`);
    this.committed = true;
  }

  /** Adapter (synchronous stores): runs every operation in order inside the adapter's open transaction. */
  runSync(tx: Tx): void {
    for (const e of this.entries) {
      const v = e.run(tx);
      if (v instanceof Promise) throw new Error('a synchronous store was given an asynchronous operation');
      e.value = v;
    }
  }

  /** Adapter (asynchronous stores): runs every operation in order inside the adapter's open transaction. */
  async runAsync(tx: Tx): Promise<void> {
    for (const e of this.entries) e.value = await e.run(tx);
  }

  /** Adapter: the transaction committed; every operation's promise gets its value. */
  done(): void {
    for (const e of this.entries) e.resolve(e.value);
  }

  /** Adapter: the transaction was rolled back; every operation's promise rejects. */
  failed(err: unknown): void {
    for (const e of this.entries) e.reject(err);
  }
}

export type Awaitable<T> = T | Promise<T>;

/**
 * `f(v)` once `v` is there: at once for a synchronous store's answer, after it for an asynchronous one. Operations
 * written with it stay synchronous on a synchronous adapter (SQLite runs a unit's operations inside one synchronous
 * transaction) and asynchronous on an asynchronous one.
 */
export const andThen = <T, R>(v: Awaitable<T>, f: (t: T) => Awaitable<R>): Awaitable<R> =>
  v instanceof Promise ? v.then(f) : f(v);

/** What commits a unit: one transaction per unit, or several units grouped into one commit, each atomic. */
export interface UnitRunner {
  commit(unit: UnitOfWork): Promise<void>;
}

/** A unit of one operation, committed at once: for writes outside a call (a decision, a console action). */
export async function single<T>(runner: UnitRunner, op: Op<T>, strict = false): Promise<T> {
  const u = new UnitOfWork('single');
  u.strict = strict;
  const p = u.add(op);
  await runner.commit(u);
  return p;
}
