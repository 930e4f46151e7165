// Whole packs kept in memory, newest use last, within a byte budget. Tree packs are small and a walk
// of a snapshot reads thousands of trees from a handful of them: one read per pack instead of one per
// tree (which costs a round trip each on S3, and an open/read/close on a local disk).
export class PackCache {
  private readonly budget: number;
  private readonly packs = new Map<string, Promise<Buffer>>();
  private readonly sizes = new Map<string, number>();
  private bytes = 0;

  constructor(budget: number) {
    this.budget = budget;
  }

  /** The pack's bytes, fetched once while they stay in the budget. */
  get(name: string, fetch: () => Promise<Buffer>): Promise<Buffer> {
    const cached = this.packs.get(name);
    if (cached) {
      this.packs.delete(name);
      this.packs.set(name, cached);
      return cached;
    }
    const loading = fetch();
    this.packs.set(name, loading);
    loading.then(
      (bytes) => {
        if (this.packs.get(name) !== loading) return;
        this.sizes.set(name, bytes.length);
        this.bytes += bytes.length;
        this.evict();
      },
      () => this.forget(name),
    );
    return loading;
  }

  forget(name: string): void {
    this.packs.delete(name);
    this.bytes -= this.sizes.get(name) ?? 0;
    this.sizes.delete(name);
  }

  clear(): void {
    this.packs.clear();
    this.sizes.clear();
    this.bytes = 0;
  }

  private evict(): void {
    for (const name of this.packs.keys()) {
      if (this.bytes <= this.budget || this.packs.size <= 1) return;
      if (this.sizes.has(name)) this.forget(name);
    }
  }
}
