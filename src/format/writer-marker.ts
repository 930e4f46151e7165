// Writer markers (`writers/<id>`, docs/FORMAT.md section 12.1): one running process that uses the
// repository. JSON inside the encrypted object envelope; rewritten (as a new object) at every heartbeat.
import { FormatError } from './bytes.ts';
import { MAX_WRITER_MARKER_BYTES } from './limits.ts';

export interface WriterMarker {
  readonly version: 1;
  /** 32 hex digits, random per process: every heartbeat of one process carries the same. */
  readonly writer: string;
  /** 0 for the first marker, then one more at each heartbeat. */
  readonly sequence: number;
  /** When this version was written, by the writer's clock (used only if the store reports no times). */
  readonly time: string;
  readonly started: string;
  readonly host: string;
  /** Where `pid` means something: 'host|boot id|pid namespace' (repo/process.ts); only there is a missing pid a dead writer. */
  readonly scope: string;
  readonly pid: number;
  /** What the process does: backup, prune, restore, check, copy, repair… */
  readonly command: string;
  /** Prune and repair index: at most one live exclusive marker at a time. */
  readonly exclusive: boolean;
}

export function encodeWriterMarker(marker: WriterMarker): Buffer {
  return Buffer.from(JSON.stringify(marker));
}

function isIsoTime(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 64 && Number.isFinite(Date.parse(value));
}

export function decodeWriterMarker(bytes: Uint8Array, what: string): WriterMarker {
  if (bytes.length > MAX_WRITER_MARKER_BYTES) throw new FormatError(`${what} is ${bytes.length} bytes, too big for a writer marker`);
  let m: WriterMarker;
  try {
    m = JSON.parse(Buffer.from(bytes).toString('utf8')) as WriterMarker;
  } catch {
    throw new FormatError(`${what} is not valid JSON`);
  }
  if (
    typeof m !== 'object' ||
    m === null ||
    m.version !== 1 ||
    typeof m.writer !== 'string' ||
    !/^[0-9a-f]{32}$/.test(m.writer) ||
    !Number.isSafeInteger(m.sequence) ||
    m.sequence < 0 ||
    !isIsoTime(m.time) ||
    !isIsoTime(m.started) ||
    typeof m.host !== 'string' ||
    m.host.length > 1024 ||
    typeof m.scope !== 'string' ||
    m.scope.length > 1024 ||
    !Number.isSafeInteger(m.pid) ||
    m.pid < 0 ||
    typeof m.command !== 'string' ||
    m.command.length > 1024 ||
    typeof m.exclusive !== 'boolean'
  ) {
    throw new FormatError(`${what} is not a version 1 writer marker`);
  }
  return m;
}
