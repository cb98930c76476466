/**
 * A value loaded at most once per `ttlMs`; callers arriving while a load is in flight share it.
 * A failed load is not cached (the next call tries again).
 */
export class CachedValue<T> {
  private value?: { at: number; data: T };
  private loading?: Promise<T>;

  constructor(
    private readonly ttlMs: number,
    private readonly load: () => Promise<T>,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    if (this.value && this.now() - this.value.at < this.ttlMs) return Promise.resolve(this.value.data);
    this.loading ??= this.load().then(
      (data) => {
        this.value = { at: this.now(), data };
        this.loading = undefined;
        return data;
      },
      (error: unknown) => {
        this.loading = undefined;
        throw error;
      },
    );
    return this.loading;
  }
}
