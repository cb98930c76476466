import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import {
  FileTransfers,
  FleetStore,
  KeySpace,
  TransferAbortedError,
  TransferGoneError,
  TransferIdleError,
  type ExecutionRef,
  type FileReceiver,
  type FileSender,
  type FileTransferOptions,
} from '@kernelfleet/store';
import { connectTestRedis, keysMatching } from '../support/redis-client';
import { TestRedisCluster } from '../support/redis-server';
import { testPrefix } from '../support/store-fixtures';

const ref: ExecutionRef = { tenant: 'acme', sessionId: 's-files', executionId: 'ex_file_1' };
const KiB = 1024;
const MiB = 1024 * KiB;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `data` as pieces of awkward sizes, from 1 byte to a bit over a chunk. */
function pieces(data: Buffer): AsyncIterable<Uint8Array> {
  const sizes = [1, 7, 65_537, 300_001, 3, 262_143, 262_145, 99_999];
  return (async function* () {
    for (let offset = 0, i = 0; offset < data.length; i++) {
      const size = sizes[i % sizes.length];
      yield data.subarray(offset, offset + size);
      offset += size;
    }
  })();
}

/** Pieces of `size` bytes without end, counting pulls, noting when the source was closed. */
function endless(size: number, state = { pulled: 0, returned: false }): AsyncIterable<Uint8Array> {
  return (async function* () {
    try {
      for (;;) {
        state.pulled++;
        yield Buffer.alloc(size, state.pulled % 256);
      }
    } finally {
      state.returned = true;
    }
  })();
}

async function collect(chunks: AsyncIterable<Buffer>, sizes: number[] = []): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const chunk of chunks) {
    sizes.push(chunk.length);
    all.push(Buffer.from(chunk));
  }
  return Buffer.concat(all);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

/** Runs the suite on the Redis `redis.start()` names (one Redis, or a Redis Cluster). */
function transferSuite(redis: { start(): Promise<string>; stop(): Promise<void> }): void {
  // The api connects fail-fast, the worker does not: each side uses a store like its app's.
  let api: FleetStore;
  let worker: FleetStore;
  let look: Redis | Cluster;
  const prefixes: string[] = [];
  const opened: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    const url = await redis.start();
    const options = { redisUrl: url, retentionSeconds: 600, workerLeaseMs: 10_000 };
    api = FleetStore.connect({ ...options, keyPrefix: 'unused', clientName: 'file-transfer-api', failFast: true });
    worker = FleetStore.connect({ ...options, keyPrefix: 'unused', clientName: 'file-transfer-worker' });
    look = connectTestRedis(url);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([api?.close(), worker?.close()]);
    look?.disconnect();
    await redis.stop();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((end) => end.close().catch(() => undefined)));
    for (const prefix of prefixes.splice(0)) for (const key of await keysMatching(look, `${prefix}:*`)) await look.del(key);
  });

  /**
   * One transfer under a key prefix of its own: a sender on the api's connection and a receiver
   * on the worker's (a PUT), or the other way round (a GET).
   */
  function transfer(options: FileTransferOptions = {}, shape: 'put' | 'get' = 'put') {
    const prefix = testPrefix('ft');
    prefixes.push(prefix);
    const keys = new KeySpace(prefix);
    const [from, to] = shape === 'put' ? [api, worker] : [worker, api];
    const track = <T extends { close(): Promise<void> }>(end: T): T => (opened.push(end), end);
    return {
      sender: (): FileSender => track(new FileTransfers(from.redis, keys, options).sender(ref)),
      receiver: (): FileReceiver => track(new FileTransfers(to.redis, keys, options).receiver(ref)),
      dataLength: () => look.llen(keys.fileData(ref)),
      leftKeys: () => keysMatching(look, `${prefix}:*`),
    };
  }

  const always = async () => true;

  it('carries 20 MiB sent in odd-sized pieces byte for byte, in chunks of at most chunkBytes, and leaves no key', async () => {
    const data = randomBytes(20 * MiB);
    const pipe = transfer();
    const [out, into] = [pipe.sender(), pipe.receiver()];
    await into.ready();
    expect(await out.waitReady(always)).toBe('ready');
    const sizes: number[] = [];
    const [sent, received] = await Promise.all([out.send(pieces(data)), collect(into.chunks(), sizes)]);
    expect(sent).toEqual({ bytes: data.length });
    expect(received.equals(data)).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(256 * KiB);
    expect(sizes).toHaveLength(Math.ceil(data.length / (256 * KiB))); // re-chunked: full chunks, not the pieces
    await Promise.all([out.close(), into.close()]);
    expect(await pipe.leftKeys()).toEqual([]);
  });

  it('keeps at most `window` chunks in Redis while the receiver does not read, and finishes once it reads again', async () => {
    const data = randomBytes(64 * KiB);
    const pipe = transfer({ window: 4, chunkBytes: KiB });
    const [out, into] = [pipe.sender(), pipe.receiver()];
    let settled = false;
    const sending = out.send(pieces(data)).finally(() => (settled = true));
    const mostWhileWaiting = async () => {
      let most = 0;
      for (let i = 0; i < 20; i++) {
        most = Math.max(most, await pipe.dataLength());
        await sleep(50);
      }
      return most;
    };
    await into.ready();
    // Credits given, nothing read: the sender fills the window and waits.
    expect(await mostWhileWaiting()).toBe(4);
    expect(settled).toBe(false);
    // The consumer takes two chunks and holds the second: one credit went back.
    const chunks = into.chunks()[Symbol.asyncIterator]();
    const taken = [await chunks.next(), await chunks.next()].map((r) => Buffer.from(r.value as Buffer));
    expect(await mostWhileWaiting()).toBeLessThanOrEqual(4);
    expect(settled).toBe(false);
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) taken.push(Buffer.from(next.value));
    expect(await sending).toEqual({ bytes: data.length });
    expect(Buffer.concat(taken).equals(data)).toBe(true);
  });

  it('gives the receiver the metadata before the bytes (a GET: the size first)', async () => {
    const data = randomBytes(600 * KiB + 5);
    const pipe = transfer({}, 'get');
    const into = pipe.receiver();
    await into.ready();
    const out = pipe.sender();
    expect(await out.waitReady(always)).toBe('ready');
    await out.meta({ size: data.length, name: 'data.bin' });
    const sending = out.send(pieces(data));
    expect(await into.waitMeta<{ size: number; name: string }>(always)).toEqual({ meta: { size: data.length, name: 'data.bin' } });
    expect((await collect(into.chunks())).equals(data)).toBe(true);
    expect(await sending).toEqual({ bytes: data.length });
  });

  it('stops a sender mid-stream when the receiver aborts: send rejects with the reason and the source is not pulled further', async () => {
    const pipe = transfer({ window: 4, chunkBytes: 16 * KiB });
    const [out, into] = [pipe.sender(), pipe.receiver()];
    const source = { pulled: 0, returned: false };
    const sending = rejection(out.send(endless(16 * KiB, source)));
    let taken = 0;
    for await (const chunk of into.chunks()) {
      expect(chunk).toHaveLength(16 * KiB);
      if (++taken === 3) {
        await into.abort('disk full');
        break;
      }
    }
    const error = await sending;
    expect(error).toBeInstanceOf(TransferAbortedError);
    expect(error).toMatchObject({ reason: 'disk full', by: 'receiver' });
    const pulledAtStop = source.pulled;
    expect(pulledAtStop).toBeLessThanOrEqual(3 + 4 + 2); // taken, the window, the chunk in hand and the one that met the abort
    await sleep(300);
    expect(source.pulled).toBe(pulledAtStop);
    expect(source.returned).toBe(true);
    await Promise.all([out.close(), into.close()]);
    expect(await pipe.leftKeys()).toEqual([]);
  });

  it("ends the receiver's chunks with TransferAbortedError when the sender aborts", async () => {
    const pipe = transfer({ chunkBytes: KiB });
    const [out, into] = [pipe.sender(), pipe.receiver()];
    let destroy: (error: Error) => void = () => undefined;
    const destroyed = new Promise<never>((_, reject) => (destroy = reject));
    const source = (async function* () {
      yield Buffer.alloc(3 * KiB, 1);
      await destroyed; // the client stops sending
    })();
    const sending = rejection(out.send(source));
    const taken: Buffer[] = [];
    const reading = rejection(
      (async () => {
        for await (const chunk of into.chunks()) {
          taken.push(chunk);
          if (taken.length === 3) await out.abort('the client went away');
        }
      })(),
    );
    const error = await reading;
    expect(error).toBeInstanceOf(TransferAbortedError);
    expect(error).toMatchObject({ reason: 'the client went away', by: 'sender' });
    expect(taken).toHaveLength(3);
    destroy(new Error('request destroyed')); // what the caller does to the source
    expect(await sending).toMatchObject({ message: 'request destroyed' });
    await Promise.all([out.close(), into.close()]);
    expect(await pipe.leftKeys()).toEqual([]);
  });

  it('gives up with TransferIdleError when the other side vanishes, and what is left expires', async () => {
    const quick = { idleMs: 300, sliceMs: 100, window: 2, chunkBytes: KiB };
    // No receiver yet: waiting for the other side to begin is patient while wanted (an operation
    // waits its turn in its lane), well past idleMs, and ends when no longer wanted.
    let asked = 0;
    expect(await transfer(quick).sender().waitReady(async () => ++asked < 8)).toBe('gone');
    expect(asked).toBe(8);
    // A receiver that gave its credits and left: the sender fills the window, then waits in vain.
    const silentReceiver = transfer(quick);
    await silentReceiver.receiver().ready();
    expect(await rejection(silentReceiver.sender().send(endless(KiB)))).toBeInstanceOf(TransferIdleError);
    // A sender that sent a chunk and left: the receiver waits in vain.
    const silentSender = transfer(quick);
    const stalled = (async function* () {
      yield Buffer.alloc(KiB);
      await new Promise(() => undefined); // never again
    })();
    void silentSender.sender().send(stalled);
    const taken: Buffer[] = [];
    const reading = (async () => {
      for await (const chunk of silentSender.receiver().chunks()) taken.push(chunk);
    })();
    expect(await rejection(reading)).toBeInstanceOf(TransferIdleError);
    expect(taken).toHaveLength(1);
    for (const pipe of [silentReceiver, silentSender]) {
      const left = await pipe.leftKeys();
      expect(left.length).toBeGreaterThan(0);
      for (const key of left) expect(await look.pttl(key)).toBeGreaterThan(0);
    }
  });

  it("answers 'gone' within about a slice once stillWanted() says no, and a send no longer wanted stops", async () => {
    const options = { sliceMs: 200, chunkBytes: KiB, window: 2 };
    let wanted = true;
    const stillWanted = async () => wanted;
    const waiting = transfer(options).sender().waitReady(stillWanted);
    const metaWaiting = transfer(options).receiver().waitMeta(stillWanted);
    await sleep(500);
    wanted = false;
    const since = Date.now();
    expect(await waiting).toBe('gone');
    expect(await metaWaiting).toBe('gone');
    expect(Date.now() - since).toBeLessThan(1_000);
    // Mid-stream: the sender stops and tells the receiver.
    wanted = true;
    const pipe = transfer(options);
    const [out, into] = [pipe.sender(), pipe.receiver()];
    const sending = rejection(out.send(endless(KiB), stillWanted));
    const chunks = into.chunks()[Symbol.asyncIterator]();
    await chunks.next();
    wanted = false;
    expect(await sending).toBeInstanceOf(TransferGoneError);
    const error = await rejection(
      (async () => {
        while (!(await chunks.next()).done);
      })(),
    );
    expect(error).toBeInstanceOf(TransferAbortedError);
    expect(error).toMatchObject({ by: 'sender' });
  });

  it.each(['receiver', 'sender'] as const)('works whichever side comes first (%s first)', async (first) => {
    const data = randomBytes(700 * KiB);
    const pipe = transfer({ chunkBytes: 64 * KiB, window: 3 });
    let run: Promise<[{ bytes: number }, Buffer]>;
    if (first === 'receiver') {
      const into = pipe.receiver();
      await into.ready();
      await sleep(300);
      run = Promise.all([pipe.sender().send(pieces(data)), collect(into.chunks())]);
    } else {
      const out = pipe.sender();
      await out.meta({ size: data.length });
      const sending = out.send(pieces(data));
      await sleep(300);
      const into = pipe.receiver();
      expect(await into.waitMeta(always)).toEqual({ meta: { size: data.length } });
      run = Promise.all([sending, collect(into.chunks())]);
    }
    const [sent, received] = await run;
    expect(sent.bytes).toBe(data.length);
    expect(received.equals(data)).toBe(true);
  });
}

describe('file transfers through Redis', () => {
  transferSuite({
    start: async () => {
      const url = process.env.KF_TEST_REDIS_URL;
      if (!url) throw new Error('KF_TEST_REDIS_URL is not set (test/support/global-setup.ts starts Redis)');
      return url;
    },
    stop: async () => undefined,
  });
});

describe('file transfers through a Redis Cluster', () => {
  let cluster: TestRedisCluster | undefined;
  transferSuite({
    start: async () => {
      cluster = await TestRedisCluster.start();
      return cluster.url;
    },
    stop: async () => cluster?.stop(),
  });
});
