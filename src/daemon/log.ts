// The daemon's own log: one line per event on stderr (journald keeps it under systemd), with the time,
// the level and the message, then any details as JSON. Everything goes through the redaction of the
// job layer, so a secret that slipped into an error message is blanked here too.
import { redact, redactString } from '../jobs/redact.ts';

export type DaemonLogLevel = 'info' | 'warn' | 'error';

export class DaemonLog {
  private readonly write: (line: string) => void;
  private readonly now: () => number;

  constructor(write: (line: string) => void = (line) => process.stderr.write(line), now: () => number = Date.now) {
    this.write = write;
    this.now = now;
  }

  info(msg: string, fields?: Record<string, unknown>): void {
    this.line('info', msg, fields);
  }

  warn(msg: string, fields?: Record<string, unknown>): void {
    this.line('warn', msg, fields);
  }

  error(msg: string, fields?: Record<string, unknown>): void {
    this.line('error', msg, fields);
  }

  private line(level: DaemonLogLevel, msg: string, fields: Record<string, unknown> | undefined): void {
    const details = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(redact(fields))}` : '';
    this.write(`${new Date(this.now()).toISOString()} ${level} ${redactString(msg)}${details}\n`);
  }
}
