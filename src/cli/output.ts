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

/** One line rewritten in place on a terminal; silent when stderr is not a terminal. */
export class StatusLine {
  private readonly stream = process.stderr;
  private shown = false;

  get active(): boolean {
    return this.stream.isTTY === true;
  }

  update(text: string): void {
    if (!this.active) return;
    const width = this.stream.columns || 80;
    const line = text.length >= width ? `${text.slice(0, width - 2)}…` : text;
    this.stream.write(`\r\x1b[K${line}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }
}

/** Calls `render` every `intervalMs` until the returned stop function is called. */
export function every(intervalMs: number, render: () => void): () => void {
  const timer = setInterval(render, intervalMs);
  return () => clearInterval(timer);
}
