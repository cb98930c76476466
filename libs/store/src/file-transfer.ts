import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { ExecutionRef, KeySpace } from './keys';
import type { RedisClient } from './redis-connection';

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
const DATA = 0x44; // D
const META = 0x4d; // M
const END = 0x45; // E
const ABORT = 0x41; // A
const CREDIT = 0x43; // C

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
const MIN_TTL_MS = 120_000;

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

/**
 * Makes both ends of file transfers. Either end may be made first: the lists keep what one side
 * sends before the other reads. Each end reads through a connection of its own (a blocking read
 * holds it), opened on first use and ended by `close()`; works on one Redis and on a Redis Cluster
 * (both lists share the execution's slot).
 */
export class FileTransfers {
  private readonly settings: Settings;

  /** Throws a RangeError when an option is not a positive integer. */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
    opts: FileTransferOptions = {},
  ) {
    const settings = {
      chunkBytes: opts.chunkBytes ?? 256 * 1024,
      window: opts.window ?? 8,
      idleMs: opts.idleMs ?? 30_000,
      sliceMs: opts.sliceMs ?? 1_000,
    };
    for (const [name, value] of Object.entries(settings)) {
      if (!Number.isInteger(value) || value <= 0) throw new RangeError(`FileTransfers: ${name} must be a positive integer, got ${value}`);
    }
    // A list outlives every wait of a live side: a side that hears nothing for idleMs gives up, so
    // only a transfer both sides left expires. (A list that expired under a live transfer would lose
    // chunks; the end's byte count would catch that, but it should not happen.)
    this.settings = { ...settings, ttlMs: Math.max(MIN_TTL_MS, 4 * settings.idleMs) };
  }

  sender(ref: ExecutionRef): FileSender {
    return new Sender(this.redis, this.settings, this.keys.fileData(ref), this.keys.fileCredit(ref));
  }

  receiver(ref: ExecutionRef): FileReceiver {
    return new Receiver(this.redis, this.settings, this.keys.fileData(ref), this.keys.fileCredit(ref));
  }
}

type Settings = Required<FileTransferOptions> & { ttlMs: number };

/**
 * A connection for one end's blocking reads and its pushes. It never reconnects and never resends:
 * a MULTI resent after a dropped connection may have run already, and a chunk pushed twice would
 * corrupt the file; a dropped connection fails the transfer instead ("Connection is closed.").
 */
function dedicatedConnection(redis: RedisClient, sliceMs: number): RedisClient {
  // A socket timeout (fail-fast connections) must outlast one blocking read.
  const perServer = (options: RedisOptions | undefined): RedisOptions => ({
    autoResendUnfulfilledCommands: false,
    connectionName: `${options?.connectionName ?? 'kernelfleet'}-file`,
    ...(options?.socketTimeout !== undefined ? { socketTimeout: options.socketTimeout + sliceMs } : {}),
  });
  let connection: RedisClient;
  if (redis.isCluster) {
    const cluster = redis as Cluster;
    const nodeOptions = cluster.options.redisOptions;
    connection = cluster.duplicate([], {
      lazyConnect: true,
      enableOfflineQueue: true,
      clusterRetryStrategy: () => null,
      retryDelayOnFailover: 0,
      redisOptions: { ...nodeOptions, ...perServer(nodeOptions) },
    });
  } else {
    const single = redis as Redis;
    connection = single.duplicate({ lazyConnect: true, enableOfflineQueue: true, retryStrategy: () => null, ...perServer(single.options) });
  }
  connection.on('error', () => undefined); // errors surface on the commands
  return connection;
}

/** Asks `stillWanted` at most once a slice while data flows, and on demand after an empty slice. */
class Wanted {
  private askedAt = Date.now();

  constructor(
    private readonly ask: StillWanted | undefined,
    private readonly sliceMs: number,
  ) {}

  async still(force = false): Promise<boolean> {
    if (!this.ask || (!force && Date.now() - this.askedAt < this.sliceMs)) return true;
    this.askedAt = Date.now();
    return this.ask();
  }
}

abstract class TransferEnd {
  private connection?: RedisClient;
  private connected?: Promise<void>;
  protected closed = false;
  /** The reason this side gave, once it aborted. */
  protected abortedWith?: string;
  /** Set once the other side's abort was read. */
  protected peerAborted = false;

  constructor(
    /** The shared command connection: aborts and deletes, which must not wait behind a blocking read. */
    protected readonly redis: RedisClient,
    protected readonly settings: Settings,
    protected readonly dataKey: string,
    protected readonly creditKey: string,
  ) {}

  protected abstract readonly side: 'sender' | 'receiver';

  protected async dedicated(): Promise<RedisClient> {
    if (this.closed) throw new Error(`the file transfer's ${this.side} is closed`);
    if (!this.connection) {
      this.connection = dedicatedConnection(this.redis, this.settings.sliceMs);
      this.connected = this.connection.connect();
    }
    await this.connected;
    return this.connection;
  }

  /** Pushes `elements` to `key` and renews its TTL, in one MULTI; with `pop`, also pops up to `count` elements of `pop.key` (returned). */
  protected async push(key: string, elements: Buffer[], pop?: { key: string; count: number }): Promise<Buffer[]> {
    const transaction = (await this.dedicated()).multi().rpush(key, ...elements).pexpire(key, this.settings.ttlMs);
    if (pop) transaction.lpopBuffer(pop.key, pop.count);
    const replies = await transaction.exec();
    if (!replies) throw new Error('the file transfer push was discarded');
    for (const [error] of replies) if (error) throw error;
    const popped = pop ? (replies[2][1] as Buffer[] | Buffer | null) : null;
    return popped === null ? [] : Array.isArray(popped) ? popped : [popped];
  }

  /**
   * The next element of `key`, blocking one slice at a time: 'gone' once `wanted` says so after an
   * empty slice; TransferIdleError after idleMs of empty slices, unless `patient` (waiting for the
   * other side to begin: an operation waits its turn in its lane as long as it is wanted).
   */
  protected async take(key: string, wanted: Wanted, patient = false): Promise<Buffer | 'gone'> {
    const since = Date.now();
    const connection = await this.dedicated();
    for (;;) {
      const popped = await connection.blpopBuffer(key, this.settings.sliceMs / 1000);
      if (popped) return popped[1];
      if (!(await wanted.still(true))) return 'gone';
      if (!patient && Date.now() - since >= this.settings.idleMs) throw new TransferIdleError(this.settings.idleMs);
    }
  }

  /** Pushes this side's abort on the list the other side reads (the shared connection: at once). */
  async abort(reason: string): Promise<void> {
    this.abortedWith ??= reason;
    const key = this.side === 'sender' ? this.dataKey : this.creditKey;
    await this.redis.multi().rpush(key, Buffer.concat([Buffer.of(ABORT), Buffer.from(reason, 'utf8')])).pexpire(key, this.settings.ttlMs).exec();
  }

  /** Aborts, unless already done, without letting a failure hide the error being reported. */
  protected async abortQuietly(reason: string): Promise<void> {
    if (this.abortedWith !== undefined || this.peerAborted) return;
    await this.abort(reason).catch(() => undefined);
  }

  protected disconnect(): void {
    this.closed = true;
    this.connection?.disconnect();
  }
}

class Sender extends TransferEnd implements FileSender {
  protected readonly side = 'sender';
  private credits = 0;
  private started = false;
  private finished = false;

  async waitReady(stillWanted: StillWanted): Promise<'ready' | 'gone'> {
    if (this.credits > 0) return 'ready';
    const element = await this.take(this.creditKey, new Wanted(stillWanted, this.settings.sliceMs), true);
    if (element === 'gone') return 'gone';
    this.count([element]);
    return 'ready';
  }

  async meta(message: unknown): Promise<void> {
    await this.push(this.dataKey, [Buffer.concat([Buffer.of(META), Buffer.from(JSON.stringify(message), 'utf8')])]);
  }

  async send(source: AsyncIterable<Uint8Array>, stillWanted?: StillWanted): Promise<{ bytes: number }> {
    if (this.started) throw new Error('FileSender.send: called twice');
    this.started = true;
    const { chunkBytes, sliceMs } = this.settings;
    const wanted = new Wanted(stillWanted, sliceMs);
    const iterator = source[Symbol.asyncIterator]();
    let sourceDone = false;
    let bytes = 0;
    // One chunk buffer, type byte in front, reused: a push has been written once its MULTI answered.
    const chunk = Buffer.allocUnsafe(1 + chunkBytes);
    chunk[0] = DATA;
    let filled = 0;
    const flush = async () => {
      await this.sendChunk(chunk.subarray(0, 1 + filled), wanted);
      bytes += filled;
      filled = 0;
    };
    try {
      for (;;) {
        let step: IteratorResult<Uint8Array>;
        try {
          step = await iterator.next();
        } catch (error) {
          sourceDone = true;
          throw error;
        }
        if (step.done) {
          sourceDone = true;
          break;
        }
        const piece = step.value;
        for (let offset = 0; offset < piece.length; ) {
          const n = Math.min(chunkBytes - filled, piece.length - offset);
          chunk.set(piece.subarray(offset, offset + n), 1 + filled);
          filled += n;
          offset += n;
          if (filled === chunkBytes) await flush();
        }
      }
      if (filled > 0) await flush();
      this.stopIfAborted();
      await this.push(this.dataKey, [Buffer.from(`E${bytes}`, 'latin1')]);
      this.finished = true;
      return { bytes };
    } catch (error) {
      await this.abortQuietly(error instanceof Error ? error.message : String(error));
      throw error;
    } finally {
      // Not awaited: a source's cleanup must not hold up the error (the caller destroys it anyway).
      if (!sourceDone) Promise.resolve().then(() => iterator.return?.()).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.finished) await this.abortQuietly('the sender closed the transfer');
    this.disconnect();
    // The receiver gave up and reads nothing more: what is left of both lists is nobody's.
    if (this.peerAborted) await this.redis.del(this.dataKey, this.creditKey).catch(() => undefined);
  }

  /** One chunk: a credit first (blocking when there is none), then the push, draining credits that came meanwhile. */
  private async sendChunk(element: Buffer, wanted: Wanted): Promise<void> {
    this.stopIfAborted();
    if (!(await wanted.still())) throw new TransferGoneError();
    while (this.credits === 0) {
      const credit = await this.take(this.creditKey, wanted);
      if (credit === 'gone') throw new TransferGoneError();
      this.count([credit]);
    }
    this.credits--;
    // Reading the credit list with every push sees a receiver's abort within one chunk.
    this.count(await this.push(this.dataKey, [element], { key: this.creditKey, count: this.settings.window + 1 }));
  }

  private count(elements: Buffer[]): void {
    for (const element of elements) {
      if (element[0] === CREDIT) this.credits++;
      else if (element[0] === ABORT) {
        this.peerAborted = true;
        throw new TransferAbortedError(element.subarray(1).toString('utf8'), 'receiver');
      } else throw new Error(`the file transfer's credit list holds an unknown element (type ${element[0]})`);
    }
  }

  private stopIfAborted(): void {
    if (this.abortedWith !== undefined) throw new TransferAbortedError(this.abortedWith, 'sender');
  }
}

class Receiver extends TransferEnd implements FileReceiver {
  protected readonly side = 'receiver';
  private gaveWindow = false;
  private ended = false;
  private iterated = false;

  async ready(): Promise<void> {
    if (this.gaveWindow) return;
    this.gaveWindow = true;
    await this.push(this.creditKey, Array.from({ length: this.settings.window }, () => Buffer.of(CREDIT)));
  }

  async waitMeta<T>(stillWanted: StillWanted): Promise<{ meta: T } | 'gone'> {
    const element = await this.take(this.dataKey, new Wanted(stillWanted, this.settings.sliceMs), true);
    if (element === 'gone') return 'gone';
    if (element[0] === META) return { meta: JSON.parse(element.subarray(1).toString('utf8')) as T };
    this.failOn(element, 'a metadata message');
  }

  chunks(stillWanted?: StillWanted): AsyncIterable<Buffer> {
    if (this.iterated) throw new Error('FileReceiver.chunks: called twice');
    this.iterated = true;
    return this.iterate(new Wanted(stillWanted, this.settings.sliceMs));
  }

  private async *iterate(wanted: Wanted): AsyncGenerator<Buffer> {
    let failure = 'the receiver stopped reading';
    let received = 0;
    try {
      await this.ready();
      let element: Buffer | undefined;
      for (;;) {
        if (this.abortedWith !== undefined) throw new TransferAbortedError(this.abortedWith, 'receiver');
        if (!(await wanted.still())) throw new TransferGoneError();
        if (!element) {
          const taken = await this.take(this.dataKey, wanted);
          if (taken === 'gone') throw new TransferGoneError();
          element = taken;
        }
        if (element[0] !== DATA) {
          if (element[0] !== END) this.failOn(element, 'a chunk or the end');
          const announced = Number(element.subarray(1).toString('latin1'));
          if (announced !== received) throw new Error(`the file transfer lost data: the sender sent ${announced} bytes, ${received} arrived`);
          this.ended = true;
          return;
        }
        const payload = element.subarray(1);
        received += payload.length;
        yield payload;
        // The consumer took it: a credit back, and the next chunk if it is there already.
        [element] = await this.push(this.creditKey, [Buffer.of(CREDIT)], { key: this.dataKey, count: 1 });
      }
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
      throw error;
    } finally {
      if (!this.ended) await this.abortQuietly(failure);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.ended) await this.abortQuietly('the receiver closed the transfer');
    this.disconnect();
    // Deleting the credit list would delete this side's abort before a sender busy with its source
    // read it; the sender deletes it once read, else it expires.
    const keepAbort = this.abortedWith !== undefined && !this.ended && !this.peerAborted;
    await this.redis.del(...(keepAbort ? [this.dataKey] : [this.dataKey, this.creditKey])).catch(() => undefined);
  }

  /** Throws for an element that is not the one expected: the sender's abort, or a protocol error. */
  private failOn(element: Buffer, expected: string): never {
    if (element[0] === ABORT) {
      this.peerAborted = true;
      throw new TransferAbortedError(element.subarray(1).toString('utf8'), 'sender');
    }
    throw new Error(`the file transfer expected ${expected}, got an element of type ${String.fromCharCode(element[0])}`);
  }
}
