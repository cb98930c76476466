import type { ExecutionEvent, ResultEvent } from '@kernelfleet/contracts';
import type { LiveEvents } from './live-events';

/** A request's wait for one execution's terminal state (see ApiProcessChannel.expect). */
export interface ResultWaiter {
  /** The `result` event (the terminal execution), once its finish published it on this process's channel. */
  readonly result: Promise<ResultEvent>;
  /** Stops waiting: the request ended, or its execution was not accepted with this waiter. */
  cancel(): void;
}

/** A request's following of every event of one execution (see ApiProcessChannel.follow). */
export interface FollowedExecution {
  /**
   * Delivers the events that came so far, then each as it comes, in the order published (which
   * is seq order). One listener; a second replaces the first.
   */
  listen(listener: (event: ExecutionEvent) => void): void;
  /** Stops following: the request ended, or its execution was not accepted with this follower. */
  cancel(): void;
}

/** What a follower's message carries: the event, with the id of its execution first. */
type FollowerMessage = ExecutionEvent & { executionId: string };

/**
 * One pub/sub channel per api process, subscribed from its start, for the executions its
 * requests wait for or follow, so that neither costs a subscription per execution:
 *
 * - an execution accepted with this channel as its `waiter` (`wait=true`, a stream of the
 *   result alone) has its terminal execution published here by its finish (finish.lib.lua),
 *   whoever ends it: the `result` event as the execution's own channel carries it;
 * - one accepted with this channel as its `follower` (a streamed submit) has every event
 *   published here too (emit.lib.lua), with its execution's id as the message's first field.
 *
 * A request registers before its accept, so nothing published between the accept and the
 * accept's reply is missed; messages find the request by execution id. Pub/sub does not send a
 * message again: one published while this process's connection was down is lost, so a request
 * also reads the replay stream or the status now and then (EventFollower).
 */
export class ApiProcessChannel {
  private readonly waiting = new Map<string, Set<(event: ResultEvent) => void>>();
  private readonly following = new Map<string, (event: ExecutionEvent) => void>();
  private subscribed = false;

  constructor(
    live: LiveEvents,
    readonly name: string,
  ) {
    live.listen(name, (message) => this.deliver(message)).then(
      () => (this.subscribed = true),
      () => undefined, // the connection was closed before it subscribed: the process is stopping
    );
  }

  /**
   * Whether the channel is subscribed, so what is published on it reaches this process. Until
   * then requests wait and follow the way any follower does (EventFollower.follow).
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

  /**
   * Registers the following of every event of `executionId` (one request per execution: its
   * id is new to the accept that follows). Events that come before `listen` are kept for it.
   */
  follow(executionId: string): FollowedExecution {
    let early: ExecutionEvent[] | undefined = [];
    let listener: ((event: ExecutionEvent) => void) | undefined;
    const deliver = (event: ExecutionEvent) => (listener ? listener(event) : early?.push(event));
    this.following.set(executionId, deliver);
    return {
      listen: (next) => {
        listener = next;
        const kept = early ?? [];
        early = undefined;
        kept.forEach(next);
      },
      cancel: () => {
        if (this.following.get(executionId) === deliver) this.following.delete(executionId);
        early = undefined;
      },
    };
  }

  private deliver(message: string): void {
    const event = JSON.parse(message) as FollowerMessage | ResultEvent;
    if ('executionId' in event) {
      const { executionId, ...rest } = event;
      this.following.get(executionId)?.(rest as ExecutionEvent);
      return;
    }
    const set = this.waiting.get(event.data.executionId);
    if (!set) return;
    this.waiting.delete(event.data.executionId);
    for (const resolve of set) resolve(event);
  }
}
