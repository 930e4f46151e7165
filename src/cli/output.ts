// Writing results: human text, or JSON lines on stdout with --json (docs/JSON.md), and a live status
// line on a terminal's stderr. Much of what is printed comes from elsewhere (names in a snapshot, hosts
// and tags, a storage host's answers): control characters are escaped everywhere, so nothing printed
// can drive the terminal or pass for a line of its own.
import { escapeControl } from '../format/text.ts';

/** One line of --json output. Every line says what it is in `type`; docs/JSON.md lists them all. */
export interface JsonMessage {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** Characters JSON.stringify leaves as they are that terminals still act on (C1 controls, line separators, bidi overrides). */
const JSON_UNSAFE = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

let json = false;
let quiet = false;

/** Set once from the command line (main.ts): warnings and the final error then become JSON lines too. */
export function setJsonOutput(on: boolean): void {
  json = on;
}

/**
 * Set for each command from its -q (main.ts): no live status and no closing report. What went wrong
 * (warnings, errors) and the results a command is asked for (a listing) still come out.
 */
export function setQuietOutput(on: boolean): void {
  quiet = on;
}

export function printJson(message: JsonMessage): void {
  const text = JSON.stringify(message, (_key, v) => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v));
  process.stdout.write(`${text.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`);
}

/** One line, or each line of a list (a table). */
export function printLine(text: string | readonly string[] = ''): void {
  const lines = typeof text === 'string' ? [text] : text;
  process.stdout.write(lines.map((line) => `${escapeControl(line)}\n`).join(''));
}

/** What a command did, when it is done (a summary): nothing with -q. */
export function printSummary(text: string | readonly string[] = ''): void {
  if (!quiet) printLine(text);
}

/** The live status lines on screen now, cleared before any other line goes to stderr. */
let shownStatus: StatusLine | undefined;

/** A line for the person at the terminal (stderr), printed above the live status lines, which then redraw. */
export function printNotice(text: string): void {
  shownStatus?.clear();
  process.stderr.write(`${escapeControl(text)}\n`);
}

/**
 * Something the user should know that does not stop the command (a file not backed up, a replica left
 * out): on stderr, so stdout stays the command's result; a `warning` line on stdout with --json.
 */
export function printWarning(message: string, about: { path?: string } = {}): void {
  if (json) printJson({ type: 'warning', ...about, message });
  else printNotice(`warning: ${about.path === undefined ? '' : `${about.path}: `}${message}`);
}

/**
 * The reason a command failed, as one line on stderr; with --json also an `error` line on stdout, so a
 * script reading only stdout learns why, and with which exit code.
 */
export function printFailure(message: string, exitCode: number): void {
  if (json) printJson({ type: 'error', message, exitCode });
  printNotice(`coffer: ${message}`);
}

/** A few lines rewritten in place on a terminal (one per destination, say); silent when stderr is not a terminal. */
export class StatusLine {
  private readonly stream = process.stderr;
  private shown = 0;

  get active(): boolean {
    return this.stream.isTTY === true && !quiet;
  }

  update(text: string | string[]): void {
    if (!this.active) return;
    const width = this.stream.columns || 80;
    const lines = (Array.isArray(text) ? text : [text]).map(escapeControl).map((l) => (l.length >= width ? `${l.slice(0, width - 2)}…` : l));
    this.clear();
    this.stream.write(lines.map((l) => `\x1b[K${l}`).join('\n'));
    this.shown = lines.length;
    shownStatus = this;
  }

  clear(): void {
    if (this.shown === 0) return;
    // Back to the first line of the block, erasing as we go.
    this.stream.write(`\r\x1b[K${'\x1b[1A\x1b[K'.repeat(this.shown - 1)}`);
    this.shown = 0;
    if (shownStatus === this) shownStatus = undefined;
  }
}

/** Calls `render` every `intervalMs` until the returned stop function is called. */
export function every(intervalMs: number, render: () => void): () => void {
  const timer = setInterval(render, intervalMs);
  return () => clearInterval(timer);
}
