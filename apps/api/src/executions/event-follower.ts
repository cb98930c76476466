import { Injectable } from '@nestjs/common';
import { isTerminal, type ExecutionEvent, type ResultEvent } from '@kernelfleet/contracts';
import { FleetStore, isStoreUnavailable, type ExecutionRef, type FollowedExecution, type ResultWaiter } from '@kernelfleet/store';

/** Safety net: re-read the replay stream this often in case a pub/sub message was missed. */
const CATCH_UP_EVERY_MS = 2_000;

/**
 * Delivers an execution's events after `afterSeq`, each exactly once and in order, until the
 * `result` event (or until `signal` aborts). Live events come over pub/sub; the replay stream
 * fills whatever came before the subscription or was missed.
 *
 * While Redis is unreachable the follower waits (the SSE stream stays open with its keepalives,
 * `wait=true` keeps waiting within its bound): a failed read is retried at the next catch-up,
 * the subscription comes back with the connection, and the replay stream fills the gap.
 */
@Injectable()
export class EventFollower {
  constructor(private readonly store: FleetStore) {}

  /**
   * The `result` event a `waiter` (ApiProcessChannel) receives, or undefined when `signal` aborts
   * first. A result published while the subscriber's connection was down is read instead, by
   * the same catch-up timer as `follow`.
   */
  awaitResult(ref: ExecutionRef, waiter: ResultWaiter, signal: AbortSignal): Promise<ResultEvent | undefined> {
    return new Promise((resolve) => {
      const done = (event?: ResultEvent) => {
        clearInterval(timer);
        signal.removeEventListener('abort', onAbort);
        waiter.cancel();
        resolve(event);
      };
      const onAbort = () => done();
      const timer = setInterval(() => {
        void this.store.executions.resultEvent(ref).then(
          (event) => event && done(event),
          () => undefined, // unreachable now: asked again at the next tick
        );
      }, CATCH_UP_EVERY_MS);
      signal.addEventListener('abort', onAbort);
      if (signal.aborted) done();
      void waiter.result.then(done);
    });
  }

  /**
   * `followed`: the events come through this process's channel, registered before the accept
   * (a streamed submit, ApiProcessChannel.follow), so there is no subscription to make and
   * nothing published before it to read back; the replay stream still fills any gap.
   */
  follow(
    ref: ExecutionRef,
    afterSeq: number,
    onEvent: (event: ExecutionEvent) => void,
    signal: AbortSignal,
    followed?: FollowedExecution,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      let last = afterSeq;
      let done = false;
      let chain: Promise<void> = Promise.resolve();
      let unlisten: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;

      const stop = (error?: unknown) => {
        if (done && !error) return;
        done = true;
        clearInterval(timer);
        unlisten?.();
        signal.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => stop();
      const deliver = (event: ExecutionEvent) => {
        if (done || event.seq <= last) return;
        last = event.seq;
        onEvent(event);
        if (event.type === 'result') stop();
      };
      /** Delivers what the replay stream holds past `last`; answers how many events it read. */
      const catchUp = async (): Promise<number> => {
        let read = 0;
        while (!done) {
          const events = await this.store.executions.readEvents(ref, last);
          read += events.length;
          events.forEach(deliver);
          if (events.length < 1_000) break;
        }
        return read;
      };
      // A terminal execution has its `result` in the stream (finish-5.lua writes the terminal
      // state and emits it in one step): a read that found events but no result saw the
      // execution still going. Only a read that found nothing asks for the status: once terminal,
      // one more read delivers everything left, and a client that already has the result
      // (Last-Event-ID at or past it) gets a stream that ends instead of one that idles.
      const catchUpOrEnd = async () => {
        if ((await catchUp()) > 0 || done) return;
        const status = await this.store.executions.status(ref);
        if (status && !isTerminal(status)) return;
        await catchUp();
        stop();
      };
      const enqueue = (step: () => Promise<void> | void) => {
        chain = chain.then(step).catch((error: unknown) => {
          if (!isStoreUnavailable(error)) stop(error);
        });
      };

      const onLive = (event: ExecutionEvent) =>
        enqueue(async () => {
          if (event.seq === last + 1) deliver(event);
          else if (event.seq > last + 1) await catchUp();
        });
      const listening = (off: () => void) => {
        unlisten = off;
        if (done) off();
        if (!followed) enqueue(catchUpOrEnd);
        timer = setInterval(() => enqueue(catchUpOrEnd), CATCH_UP_EVERY_MS);
      };

      signal.addEventListener('abort', onAbort);
      if (followed) {
        followed.listen(onLive);
        listening(() => followed.cancel());
      } else {
        this.store.live.listen(this.store.keys.liveChannel(ref), (message) => onLive(JSON.parse(message) as ExecutionEvent)).then(listening, stop);
      }
    });
  }
}
