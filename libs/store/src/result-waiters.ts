import type { ResultEvent } from '@kernelfleet/contracts';
import type { LiveEvents } from './live-events';

/** A request's wait for one execution's terminal state (see ResultWaiters.expect). */
export interface ResultWaiter {
  /** The `result` event (the terminal execution), once its finish published it on this process's results channel. */
  readonly result: Promise<ResultEvent>;
  /** Stops waiting: the request ended, or its execution was not accepted with this waiter. */
  cancel(): void;
}

/**
 * `wait=true` without a subscription per execution. Each api process listens on one results
 * channel, from its start; an execution accepted with that channel as its `waiter` has its
 * terminal execution published there by its finish (finish-5.lua), whoever ends it. A request
 * registers before its accept, so an execution that ends before the accept's reply is read is
 * not missed, and the message finds the request by execution id.
 *
 * Pub/sub does not send a message again: one published while this process's connection was
 * down is lost, so a waiting request also reads the status now and then (EventFollower.awaitResult).
 */
export class ResultWaiters {
  private readonly waiting = new Map<string, Set<(event: ResultEvent) => void>>();
  private subscribed = false;

  constructor(
    live: LiveEvents,
    readonly channel: string,
  ) {
    live.listen(channel, (message) => this.deliver(message)).then(
      () => (this.subscribed = true),
      () => undefined, // the connection was closed before it subscribed: the process is stopping
    );
  }

  /**
   * Whether the channel is subscribed, so a result published on it reaches this process. Until
   * then requests wait the way any follower does (EventFollower.follow).
   */
  get ready(): boolean {
    return this.subscribed;
  }

  /** Registers a wait for the end of `executionId`. */
  expect(executionId: string): ResultWaiter {
    let resolve!: (event: ResultEvent) => void;
    const result = new Promise<ResultEvent>((r) => (resolve = r));
    const set = this.waiting.get(executionId) ?? new Set();
    set.add(resolve);
    this.waiting.set(executionId, set);
    const cancel = () => {
      set.delete(resolve);
      if (set.size === 0 && this.waiting.get(executionId) === set) this.waiting.delete(executionId);
    };
    return { result, cancel };
  }

  private deliver(message: string): void {
    const event = JSON.parse(message) as ResultEvent;
    const set = this.waiting.get(event.data.executionId);
    if (!set) return;
    this.waiting.delete(event.data.executionId);
    for (const resolve of set) resolve(event);
  }
}
