// Writing results: human text or JSON lines on stdout, and a live status line on a terminal's stderr.

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v))}\n`);
}

export function printLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** Warnings and notes go to stderr so stdout stays the command's result. */
export function printWarning(text: string): void {
  process.stderr.write(`warning: ${text}\n`);
}

/** A few lines rewritten in place on a terminal (one per destination, say); silent when stderr is not a terminal. */
export class StatusLine {
  private readonly stream = process.stderr;
  private shown = 0;

  get active(): boolean {
    return this.stream.isTTY === true;
  }

  update(text: string | string[]): void {
    if (!this.active) return;
    const width = this.stream.columns || 80;
    const lines = (Array.isArray(text) ? text : [text]).map((l) => (l.length >= width ? `${l.slice(0, width - 2)}…` : l));
    this.clear();
    this.stream.write(lines.map((l) => `\x1b[K${l}`).join('\n'));
    this.shown = lines.length;
  }

  clear(): void {
    if (this.shown === 0) return;
    // Back to the first line of the block, erasing as we go.
    this.stream.write(`\r\x1b[K${'\x1b[1A\x1b[K'.repeat(this.shown - 1)}`);
    this.shown = 0;
  }
}

/** Calls `render` every `intervalMs` until the returned stop function is called. */
export function every(intervalMs: number, render: () => void): () => void {
  const timer = setInterval(render, intervalMs);
  return () => clearInterval(timer);
}
