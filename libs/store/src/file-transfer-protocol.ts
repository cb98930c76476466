/**
 * Session files travel between an api replica and the session's home worker through Redis, as a
 * flow-controlled pipe of chunks: one transfer (one file operation, one execution ref) has two
 * lists in the execution's hash slot (`KeySpace.fileData`, `KeySpace.fileCredit`).
 *
 * Wire contract (do not change one side alone). Every element is a Buffer whose first byte is its
 * type:
 * - data list, sender → receiver: `M` + UTF-8 JSON (metadata, before any data), `D` + payload
 *   (one chunk, at most chunkBytes), `E` + the stream's byte count in ASCII decimal (end), `A` +
 *   UTF-8 reason (the sender gave up). The end carries the count so that the receiver tells a
 *   lost chunk (a list that expired, a Redis failover that lost the last writes) from the end;
 *   a file is never taken whole when it is not;
 * - credit list, receiver → sender: `C` (one more chunk may be sent), `A` + UTF-8 reason (the
 *   receiver gave up: the sender stops at once).
 *
 * The receiver gives `window` credits, then one more each time its consumer has taken a chunk,
 * so at most `window` chunks are ever in Redis; the sender holds one chunk, the receiver the one
 * its consumer has. Every push sets the list's TTL, so an abandoned transfer leaves nothing behind.
 */
export const DATA = 0x44; // D
export const META = 0x4d; // M
export const END = 0x45; // E
export const ABORT = 0x41; // A
export const CREDIT = 0x43; // C

export interface FileTransferOptions {
  /** Largest payload of one data element. Default 256 KiB. */
  chunkBytes?: number;
  /** Chunks the sender may have in Redis, unread, at once. Default 8. */
  window?: number;
  /** How long a side waits without a word from the other before it gives up. Default 30 s. */
  idleMs?: number;
  /** How long one blocking read lasts: how often `stillWanted()` is asked. Default 1 s. */
  sliceMs?: number;
}

/** Lists live this long after their last push; never less than a few idle periods (see below). */
export const MIN_TTL_MS = 120_000;

/** The other side (or this one, by `abort()`) gave up; `reason` is what it said. */
export class TransferAbortedError extends Error {
  constructor(
    readonly reason: string,
    /** Which side gave up. */
    readonly by: 'sender' | 'receiver',
  ) {
    super(`the file transfer was aborted by the ${by}: ${reason}`);
    this.name = 'TransferAbortedError';
  }
}

/** Nothing came from the other side for `idleMs`: it is gone, or stuck. */
export class TransferIdleError extends Error {
  constructor(readonly idleMs: number) {
    super(`the other side of the file transfer said nothing for ${idleMs} ms`);
    this.name = 'TransferIdleError';
  }
}

/** `stillWanted()` answered false while data was flowing: this side stopped (and told the other). */
export class TransferGoneError extends Error {
  constructor() {
    super('the file transfer is no longer wanted');
    this.name = 'TransferGoneError';
  }
}

/** Asked every slice of a wait; false ends the wait ('gone'). */
export type StillWanted = () => Promise<boolean>;

/** The side that has the bytes: the api for a PUT, the home worker for a GET. */
export interface FileSender {
  /**
   * Waits for the receiver's first credit (it is ready), asking `stillWanted()` after every empty
   * slice. Resolves 'ready', or 'gone' once `stillWanted()` answered false. Rejects with
   * TransferAbortedError when the receiver gave up. No idle limit: an operation waits for its turn
   * in the session's lane as long as it is wanted.
   */
  waitReady(stillWanted: StillWanted): Promise<'ready' | 'gone'>;
  /** Sends one metadata message (JSON), e.g. the file's size; needs no credit. Send it before `send`. */
  meta(message: unknown): Promise<void>;
  /**
   * Sends everything `source` yields, re-chunked to at most chunkBytes, one credit per chunk,
   * then the end. Resolves with the byte count once the end is in Redis (not once it was read).
   * Rejects with TransferAbortedError (by 'receiver') when the receiver gave up, with
   * TransferAbortedError (by 'sender') after this side's own `abort()`, TransferIdleError when no
   * credit came for idleMs, TransferGoneError when `stillWanted()` answered false, or the
   * source's own error; in every case but the receiver's abort the receiver is told (an `A` with
   * the error's message). Once it rejects it pulls nothing more from `source`; it asks the
   * source's iterator to `return()` without waiting for it (a Node Readable is destroyed by that);
   * the caller may destroy the source too. Call it once.
   */
  send(source: AsyncIterable<Uint8Array>, stillWanted?: StillWanted): Promise<{ bytes: number }>;
  /** Tells the receiver this side gave up (its `chunks()` throws TransferAbortedError). */
  abort(reason: string): Promise<void>;
  /**
   * Ends the dedicated connection. Closing a transfer that neither ended nor was aborted aborts it
   * first, so the receiver never waits for a sender that left; after the receiver's abort it
   * deletes both lists. Never throws (what it could not delete expires); call it whatever happened.
   */
  close(): Promise<void>;
}

/** The side that takes the bytes: the home worker for a PUT, the api for a GET. */
export interface FileReceiver {
  /** Gives the initial window of credits: the sender may start. Only the first call counts. */
  ready(): Promise<void>;
  /**
   * Waits for the sender's metadata message, which must come first (a GET learns the size before
   * the bytes), asking `stillWanted()` after every empty slice: the message, or 'gone' once
   * `stillWanted()` answered false. Rejects with TransferAbortedError when the sender gave up, or
   * an Error when something else came first. No idle limit, as for `waitReady`.
   */
  waitMeta<T>(stillWanted: StillWanted): Promise<{ meta: T } | 'gone'>;
  /**
   * The chunks in order (`ready()` first, when it was not called). One credit goes back each time
   * the consumer has taken a chunk (the generator resumes), so at most `window` chunks are ever
   * in Redis. Ends at the sender's end once the byte count matches (else throws an Error: data was
   * lost). Throws TransferAbortedError when the sender gave up, TransferIdleError after idleMs with
   * nothing, TransferGoneError once `stillWanted()` (asked every slice) answered false. When it
   * throws for another reason than the sender's abort, or the consumer stops early, the sender is
   * told to stop. Iterate it once.
   */
  chunks(stillWanted?: StillWanted): AsyncIterable<Buffer>;
  /** Tells the sender to stop at once (its `send` rejects with TransferAbortedError). */
  abort(reason: string): Promise<void>;
  /**
   * Deletes both lists and ends the dedicated connection. Closing a transfer that neither ended
   * nor was aborted aborts it first; after this side's abort the credit list stays (with its TTL)
   * so that a sender not yet at its next push still reads the abort. Never throws (what it could
   * not delete expires); call it whatever happened.
   */
  close(): Promise<void>;
}

/** The options as every end uses them, with the lists' TTL. */
export type Settings = Required<FileTransferOptions> & { ttlMs: number };
