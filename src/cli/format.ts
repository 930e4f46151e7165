// Human-readable numbers for terminal output (bytes and durations live in src/units.ts, shared with the daemon's messages).
import { escapeControl } from '../format/text.ts';

export { count, formatBytes, formatDuration } from '../units.ts';

/** Left-aligned columns separated by two spaces, one string per line (cells with control characters escaped). */
export function formatTable(header: string[], rows: string[][]): string[] {
  const cells = rows.map((r) => r.map(escapeControl));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (row: string[]): string => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
}

/** Parses a byte size with an optional unit suffix: 512, 64K, 16M, 2G. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) return undefined;
  const power = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.round(Number(m[1]) * 1024 ** power);
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

function utcOffset(minutesWest: number): string {
  const east = -minutesWest;
  return `${east < 0 ? '-' : '+'}${pad2(Math.floor(Math.abs(east) / 60))}:${pad2(Math.abs(east) % 60)}`;
}

/**
 * A time for people: local time, "2024-05-01 14:03:22". When its UTC offset is not the one the local
 * zone has now (the other side of a daylight-saving change) the offset follows ("+01:00"), so that the
 * time is never ambiguous. JSON output keeps ISO 8601 times in UTC.
 */
export function formatTime(time: Date | number | string, now: Date = new Date()): string {
  const d = time instanceof Date ? time : new Date(time);
  if (Number.isNaN(d.getTime())) return String(time);
  const text = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  return d.getTimezoneOffset() === now.getTimezoneOffset() ? text : `${text} ${utcOffset(d.getTimezoneOffset())}`;
}
