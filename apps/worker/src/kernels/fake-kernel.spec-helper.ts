import { KernelClosedError, KernelDiedError, type ExecuteOutcome, type KernelHandle } from '@kernelfleet/kernel';

let nextId = 0;

/** A KernelHandle double that records what was done to it. */
export class FakeKernel implements KernelHandle {
  readonly id = `k${++nextId}`;
  readonly executed: string[] = [];
  readonly dead: Promise<KernelDiedError>;
  shutDown = false;
  disposed = false;
  outcome: ExecuteOutcome = { status: 'ok' };
  private resolveDead!: (error: KernelDiedError) => void;

  constructor(readonly cwd?: string) {
    this.dead = new Promise((resolve) => (this.resolveDead = resolve));
  }

  async execute(code: string): Promise<ExecuteOutcome> {
    if (this.disposed) throw new KernelClosedError(this.id);
    this.executed.push(code);
    return this.outcome;
  }

  async interrupt(): Promise<void> {}

  async shutdown(): Promise<void> {
    this.shutDown = true;
    this.disposed = true;
  }

  async isAlive(): Promise<boolean> {
    return !this.disposed;
  }

  dispose(): void {
    this.disposed = true;
  }

  die(): void {
    this.resolveDead(new KernelDiedError(this.id, 'died'));
  }
}

export async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
