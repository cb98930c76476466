import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { RedisClient } from './redis-connection';
import {
  ABORT,
  CREDIT,
  DATA,
  END,
  META,
  TransferAbortedError,
  TransferGoneError,
  TransferIdleError,
  type FileReceiver,
  type FileSender,
  type Settings,
  type StillWanted,
} from './file-transfer-protocol';

// The two ends of a file transfer (the protocol: file-transfer-protocol.ts).
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

export class Sender extends TransferEnd implements FileSender {
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

export class Receiver extends TransferEnd implements FileReceiver {
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
