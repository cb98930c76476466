import { Inject, Injectable, Logger } from '@nestjs/common';
import { SHARED_QUEUE, WRITING_FILE_OPS, type Execution, type KernelInfo, type RunExecutionJob, type TerminalStatus } from '@kernelfleet/contracts';
import type { WorkerConfig } from '@kernelfleet/config';
import { KernelDiedError, KernelStartTimeoutError } from '@kernelfleet/kernel';
import {
  FleetStore,
  KERNEL_LOST_NOTICE,
  isRunningHere,
  QUEUE_TIMEOUT_MESSAGE,
  resultFromSink,
  resultWithoutRun,
  terminalExecution,
  terminalFileOp,
  type CodeSending,
  type Ending,
  type ExecutionRecord,
  type ExecutionRef,
  type SessionHolder,
} from '@kernelfleet/store';
import { executionFinishedLine, logFields } from '@kernelfleet/telemetry';
import { AcquiredKernel, SessionKernels } from '../kernels/session-kernels';
import { SessionFileOps } from '../files/session-file-ops.service';
import { ToolBridge } from '../tools/tool-bridge';
import { WORKER_CONFIG } from '../tokens';
import { Deadline, messageSeconds, NOTICES } from './deadline';
import { ExecutionOutput } from './execution-output';
import { QueueSweeper } from './queue-sweeper';
import { runOnKernel, type KernelRunEnd } from './kernel-run';

/** Kernel starts an execution tries (each within KERNEL_START_MAX_MS and its deadline) before it fails. */
const START_ATTEMPTS = 3;

/** Why an execution ends before its code reached a kernel. */
interface StartFailure {
  failure: TerminalStatus;
  message: string;
}

/**
 * Runs the lane heads handed to this worker: claim, kernel, code, terminal state, next head.
 * Every path through `handle` ends the execution in exactly one terminal state or leaves it
 * to whoever owns it (a stale or re-routed job).
 */
@Injectable()
export class ExecutionRunner {
  private readonly logger = new Logger(ExecutionRunner.name);
  private readonly cancels = new Map<string, AbortController>();
  private readonly earlyCancels = new Set<string>();

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly store: FleetStore,
    private readonly kernels: SessionKernels,
    private readonly tools: ToolBridge,
    private readonly files: SessionFileOps,
    private readonly sweeper: QueueSweeper,
  ) {
    // Every terminal state this worker writes (runs, the queue sweeper, the reaper), once each.
    store.lanes.onFinished((ref, execution) => this.logger.log(executionFinishedLine(ref.tenant, execution)));
  }

  get runningCount(): number {
    return this.cancels.size;
  }

  /** A cancel for an execution running here (or about to: the claim may still be in flight). */
  cancel(executionId: string): void {
    const controller = this.cancels.get(executionId);
    if (controller) controller.abort();
    else {
      this.earlyCancels.add(executionId);
      setTimeout(() => this.earlyCancels.delete(executionId), 60_000).unref();
    }
  }

  /** Runs a job's execution; `'later'` when this worker is full and cannot make room for it now. */
  async handle(job: RunExecutionJob, queueName: string): Promise<void | 'later'> {
    const ref: ExecutionRef = { tenant: job.tenant, sessionId: job.sessionId, executionId: job.executionId };
    const me = this.config.workerId;
    if (queueName === SHARED_QUEUE) {
      const home = await this.store.sessions.homeOf(ref);
      if (home && home !== me && (await this.store.registry.acceptsWork(home))) {
        await this.store.dispatcher.toWorker(home, ref);
        return;
      }
    }
    // Only a shared-queue job waits for room (its consumer pauses meanwhile); a head from the
    // worker's inbox is for a session it holds.
    if (queueName === SHARED_QUEUE && !(await this.roomFor(ref))) return 'later';
    // A claim of ours is in our running set from the start: a worker that dies right after
    // claiming is found there by its reaper.
    const warm = this.kernels.warmGeneration(ref);
    const claim = await this.store.executions.markRunningAndClaim(ref, me, this.config.bootId, Date.now, warm);
    const runningHere = isRunningHere(claim, me, this.config.bootId);
    if (claim.kind === 'claimed') {
      let finished = false;
      try {
        finished = claim.record.fileOp ? await this.runFileOp(claim.record, claim.holder) : await this.run(claim.record, claim.holder, claim.codeSent ? warm : undefined);
      } finally {
        // A run that ended with its finish left the running set in that step.
        if (!finished) await this.store.executions.unmarkRunning(ref, me);
      }
      return;
    }
    if (claim.kind === 'expired') {
      await this.sweeper.endOverdue(ref);
      return;
    }
    if (claim.kind === 'not_queued' && claim.status === 'running' && claim.runner && !runningHere) {
      // Handed again while marked running elsewhere (or by this worker's previous process):
      // only a lost runner makes it ours to recover.
      if (!(await this.store.registry.isRunnerAlive(claim.runner, claim.runnerBoot))) {
        await this.store.failover.recoverExecution(ref, claim.runner);
      }
    }
  }

  /**
   * A session new to a full worker needs a slot: one of the worker's idle kernels is evicted for
   * it (docs/capacity.md). Only an execution that will hold a session kernel asks: per-call
   * executions take pool kernels, and reads of files of a session homed nowhere start none.
   */
  private async roomFor(ref: ExecutionRef): Promise<boolean> {
    if (!this.kernels.isFull || this.kernels.holds(ref)) return true;
    const record = await this.store.executions.getRecord(ref);
    if (!record || record.status !== 'queued' || !(await this.holdsSessionKernel(record))) return true;
    return this.kernels.makeRoom(ref);
  }

  /**
   * Whether the execution runs on the session's kernel: per-call executions take kernels of their
   * own, and a file read of a session not homed here finds no files and starts nothing
   * (docs/files.md).
   */
  private async holdsSessionKernel(record: ExecutionRecord): Promise<boolean> {
    if (record.kernelMode !== 'session') return false;
    if (!record.fileOp || WRITING_FILE_OPS.includes(record.fileOp.op)) return true;
    return (await this.store.sessions.homeOf(record.ref)) === this.config.workerId;
  }

  /**
   * `holder`: the session's home and generation as the claim saw them (see SessionKernels.acquire).
   * `sentTo`: the kernel generation the claim already marked the code as sent to.
   */
  private async run(record: ExecutionRecord, holder: SessionHolder, sentTo?: number): Promise<boolean> {
    const { ref } = record;
    const { controller, deadline } = this.begin(record);
    const output = new ExecutionOutput(ref, this.store.executions, this.config.output.artifactMaxBytes, this.config.output.liveMaxChars, () => this.store.connected);
    let kernel: AcquiredKernel | undefined;
    try {
      let ending: Ending;
      const started = await this.startKernel(record, deadline, holder);
      if ('failure' in started) {
        ending = { status: started.failure, phase: 'kernel_start', exitCode: started.failure === 'timed_out' ? null : 1 };
        return await this.finishRun(record, terminalExecution(record, ending, resultWithoutRun(ending, started.message)));
      }
      kernel = started;
      if (controller.signal.aborted) {
        ending = { status: 'cancelled', phase: 'kernel_start', exitCode: null, kernel: kernel.info };
        return await this.finishRun(record, terminalExecution(record, ending, resultWithoutRun(ending, '')));
      }
      const sending = kernel.info.generation === sentTo ? 'sent' : await this.codeMayGo(record, kernel);
      if (sending === 'taken') return false;
      if (sending === 'disposed') return await this.endDisposedBeforeRun(record, kernel);
      let end = await this.runCode(record, kernel, output, deadline, controller.signal);
      if (end.kind === 'died' && !end.interruptedBy && record.retryOnKernelLoss && !record.retried && !kernel.ephemeral) {
        await this.store.executions.markRetried(ref);
        await this.kernels.lose(ref, kernel.info.generation);
        kernel = await this.kernels.acquire(ref, { reset: false, startTimeoutMs: deadline.stepBudget(this.config.kernels.startMaxMs), notAfter: deadline.at });
        const again = await this.codeMayGo(record, kernel);
        if (again === 'taken') return false;
        if (again === 'disposed') return await this.endDisposedBeforeRun(record, kernel);
        end = await this.runCode(record, kernel, output, deadline, controller.signal);
      }
      if (end.kind === 'finished' && end.outcome.status === 'error' && !end.interruptedBy) {
        output.stream('stderr', `${end.outcome.traceback.join('\n')}\n`);
      }
      const { ending: runEnding, notice } = this.describe(end, deadline, kernel.info);
      // A disposed kernel is gone already, and its session decided for (state `none`).
      if (end.kind !== 'finished' && end.kind !== 'disposed' && !kernel.ephemeral) await this.kernels.lose(ref, kernel.info.generation);
      await output.settle();
      const summary = output.finish(notice);
      const result = resultFromSink(runEnding, summary, output.displays, summary.overflowed ? ref.executionId : undefined);
      return await this.finishRun(record, terminalExecution(record, runEnding, result));
    } catch (error) {
      this.logger.error(logFields(`execution ${ref.executionId} failed: ${(error as Error).message ?? error}`, { ...ref, stack: (error as Error).stack }));
      await output.settle();
      const ending: Ending = { status: 'failed', phase: 'run', exitCode: 1, kernel: kernel?.info };
      const result = resultWithoutRun(ending, `[kernelfleet worker error: ${(error as Error).message}]`);
      return await this.finishRun(record, terminalExecution(record, ending, result));
    } finally {
      this.cancels.delete(ref.executionId);
      this.kernels.done(ref);
      if (kernel?.ephemeral) {
        await this.kernels.releaseEphemeral(kernel.handle).catch((e: unknown) => this.logger.warn(`per-call kernel clean-up failed: ${e}`));
      }
    }
  }

  /** A run's cancel switch (registered here for cancels; already off if one came early) and its deadline. */
  private begin(record: ExecutionRecord): { controller: AbortController; deadline: Deadline } {
    const controller = new AbortController();
    this.cancels.set(record.ref.executionId, controller);
    if (record.cancelRequested || this.earlyCancels.delete(record.ref.executionId)) controller.abort();
    return { controller, deadline: new Deadline(record.deadlineAt, record.deadlineAt - record.acceptedAt) };
  }

  /**
   * A file operation's turn in its lane (docs/files.md). Writes need the session's kernel (its
   * uid owns the folder; a new session is placed here as a first execution would be); reads of a
   * session homed nowhere find no files and start nothing. The kernel runs no code.
   */
  private async runFileOp(record: ExecutionRecord, holder: SessionHolder): Promise<boolean> {
    const { ref } = record;
    const { controller, deadline } = this.begin(record);
    let kernel: AcquiredKernel | undefined;
    try {
      if (await this.holdsSessionKernel(record)) {
        const started = await this.startKernel(record, deadline, holder);
        if ('failure' in started) {
          const ending: Ending = { status: started.failure, phase: 'kernel_start', exitCode: null };
          return await this.finishRun(record, terminalExecution(record, ending, resultWithoutRun(ending, started.message)));
        }
        kernel = started;
        const sending = await this.codeMayGo(record, kernel);
        if (sending === 'taken') return false;
        if (sending === 'disposed') return await this.endDisposedBeforeRun(record, kernel);
      }
      const cancelled = () => controller.signal.aborted || kernel?.disposed?.aborted === true;
      const target = kernel ? { folder: this.kernels.folders.folderOf(ref), uid: this.kernels.uidOf(kernel.handle) } : null;
      const outcome = await this.files.perform(record, target, () => !cancelled() && !deadline.expired());
      // An operation that gave up says why: cancelled (or disposed), out of time, or its own error.
      const status: TerminalStatus = !outcome.error ? 'completed' : cancelled() ? 'cancelled' : deadline.expired() ? 'timed_out' : 'failed';
      const ending: Ending = { status, phase: 'run', exitCode: null, kernel: kernel?.info };
      return await this.finishRun(record, terminalFileOp(record, ending, outcome));
    } catch (error) {
      this.logger.error(logFields(`file operation ${ref.executionId} failed: ${(error as Error).message ?? error}`, { ...ref, stack: (error as Error).stack }));
      const ending: Ending = { status: 'failed', phase: 'run', exitCode: null, kernel: kernel?.info };
      return await this.finishRun(record, terminalExecution(record, ending, resultWithoutRun(ending, `[kernelfleet worker error: ${(error as Error).message}]`)));
    } finally {
      this.cancels.delete(ref.executionId);
      if (kernel) this.kernels.done(ref);
    }
  }

  /**
   * Runs the code on the kernel, with the execution's tool bridge open while it runs: calls
   * still waiting when the cell ends (finished, interrupted, killed, died) end unanswered.
   */
  private async runCode(record: ExecutionRecord, kernel: AcquiredKernel, output: ExecutionOutput, deadline: Deadline, cancel: AbortSignal): Promise<KernelRunEnd> {
    const bridge = await this.tools.open(record, this.kernels.uidOf(kernel.handle), output);
    const onCancel = () => void bridge?.endWaiting('the execution was cancelled');
    const onDisposed = () => void bridge?.endWaiting('the session was disposed');
    cancel.addEventListener('abort', onCancel);
    kernel.disposed?.addEventListener('abort', onDisposed);
    try {
      const signals = { cancel, disposed: kernel.disposed };
      return await runOnKernel(kernel.handle, record.code, output, deadline, signals, this.config.kernels.interruptGraceMs, bridge?.metadata as Record<string, unknown> | undefined);
    } finally {
      cancel.removeEventListener('abort', onCancel);
      kernel.disposed?.removeEventListener('abort', onDisposed);
      const reason = kernel.disposed?.aborted
        ? 'the session was disposed'
        : cancel.aborted
          ? 'the execution was cancelled'
          : deadline.expired()
            ? 'the execution reached its deadline'
            : 'the cell ended before the answer came';
      await bridge?.close(reason);
    }
  }

  /**
   * Records that the code goes to the kernel now, if it still may (ExecutionRepository.markCodeSent):
   * a reaper that found this worker's lease lapsed may have put the execution back in the queue
   * as never run (then it runs wherever it is dispatched next, not here too), or the session was
   * disposed while the kernel started.
   */
  private async codeMayGo(record: ExecutionRecord, kernel: AcquiredKernel): Promise<CodeSending> {
    const { workerId, bootId } = this.config;
    const sending = await this.store.executions.markCodeSent(record.ref, workerId, bootId, kernel.ephemeral ? null : kernel.info.generation);
    if (sending === 'taken') {
      this.logger.warn(logFields(`execution ${record.ref.executionId} was taken from this worker before its code was sent; not run here`, { ...record.ref }));
    }
    return sending;
  }

  /**
   * The session was disposed while this execution's kernel started (the start homed the session
   * again): that kernel is not the session's, and the code does not run.
   */
  private async endDisposedBeforeRun(record: ExecutionRecord, kernel: AcquiredKernel): Promise<boolean> {
    await this.kernels.discard(record.ref, kernel.info.generation);
    const ending: Ending = { status: 'cancelled', phase: 'kernel_start', exitCode: null, kernel: kernel.info };
    return this.finishRun(record, terminalExecution(record, ending, resultWithoutRun(ending, `[${NOTICES.disposedBeforeRun}]`)));
  }

  /**
   * The kernel to run on, or how the execution ends when none could be started. A start that
   * timed out or died is tried again here, up to {@link START_ATTEMPTS} times within the deadline:
   * the execution keeps its turn rather than going back to the queue (docs/capacity.md).
   */
  private async startKernel(record: ExecutionRecord, deadline: Deadline, holder: SessionHolder): Promise<AcquiredKernel | StartFailure> {
    const timedOut: StartFailure = { failure: 'timed_out', message: QUEUE_TIMEOUT_MESSAGE };
    for (let attempt = 1; ; attempt++) {
      const budget = deadline.stepBudget(this.config.kernels.startMaxMs);
      if (budget <= 0) return timedOut;
      try {
        return record.kernelMode === 'per-call'
          ? await this.kernels.acquireEphemeral(record.ref, budget, deadline.at)
          : await this.kernels.acquire(record.ref, { reset: record.reset, startTimeoutMs: budget, notAfter: deadline.at, holder });
      } catch (error) {
        if (!(error instanceof KernelStartTimeoutError || error instanceof KernelDiedError)) throw error;
        if (deadline.expired()) return timedOut;
        const failure: StartFailure =
          error instanceof KernelStartTimeoutError
            ? { failure: 'failed', message: `[the kernel did not start within ${messageSeconds(this.config.kernels.startMaxMs)}s; nothing ran. Retry the execution.]` }
            : { failure: 'failed', message: `[the kernel died while starting (${error.reason}); nothing ran. Retry the execution.]` };
        if (attempt >= START_ATTEMPTS) return failure;
        this.logger.warn(logFields(`execution ${record.ref.executionId}: kernel start ${attempt} of ${START_ATTEMPTS} failed (${error.message}); starting another`, { ...record.ref }));
      }
    }
  }

  private describe(end: KernelRunEnd, deadline: Deadline, kernel: KernelInfo): { ending: Ending; notice?: string } {
    const base = { phase: 'run' as const, kernel };
    if (end.kind === 'disposed') return { ending: { ...base, status: 'cancelled', exitCode: null }, notice: NOTICES.disposed };
    if (end.kind === 'killed') {
      const status = end.by === 'deadline' ? 'timed_out' : 'cancelled';
      return { ending: { ...base, status, exitCode: null }, notice: end.by === 'deadline' ? NOTICES.killed : undefined };
    }
    if (end.kind === 'died') {
      return { ending: { ...base, status: 'outcome_unknown', exitCode: null }, notice: KERNEL_LOST_NOTICE };
    }
    if (end.interruptedBy === 'deadline') {
      return { ending: { ...base, status: 'timed_out', exitCode: null }, notice: NOTICES.interrupted(deadline.seconds) };
    }
    if (end.interruptedBy === 'cancel') return { ending: { ...base, status: 'cancelled', exitCode: null } };
    switch (end.outcome.status) {
      case 'ok':
        return { ending: { ...base, status: 'completed', exitCode: 0 } };
      case 'stdin':
        return { ending: { ...base, status: 'failed', exitCode: 1, stdinRequested: true }, notice: NOTICES.stdin };
      default:
        return { ending: { ...base, status: 'failed', exitCode: 1 } };
    }
  }

  /**
   * Ends a run of this worker: finishing releases the lane and dispatches the session's next
   * execution. After a disposal that one finds the session un-homed in Redis (the disposal wrote
   * it before telling this worker), so it gets a fresh kernel wherever it runs; on this worker
   * its acquire waits for the old kernel's shutdown (the session's lock). The execution leaves
   * this worker's running set in the same step. Answers true: the run is over.
   */
  private async finishRun(record: ExecutionRecord, execution: Execution): Promise<true> {
    await this.store.lanes.finish(record.ref, execution, 'running', this.config.workerId);
    // The client has now heard of the lost state (see SessionRepository.isStateLossPending);
    // a file operation's answer does not say it, so the session's next execution still does.
    if (execution.kernel?.stateLost && record.kernelMode === 'session' && !record.fileOp) await this.store.sessions.setStateLossPending(record.ref, null);
    return true;
  }
}
