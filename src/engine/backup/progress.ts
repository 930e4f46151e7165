// Live counters of a backup run, read by whoever renders progress (terminal, JSON lines, job database).
import type { DestinationStatus } from '../destination.ts';
import type { DirectoryAhead, DirectoryDone, WalkDetails } from './walk-progress.ts';

export type BackupStage = 'scanning' | 'dumping' | 'packing' | 'uploading' | 'committing' | 'done';

export interface BackupProgress {
  readonly stage: BackupStage;
  readonly elapsedMs: number;
  readonly filesDone: number;
  readonly bytesDone: number;
  /** Totals from the counter thread; final once `totalsKnown`. */
  readonly filesTotal: number;
  readonly bytesTotal: number;
  readonly totalsKnown: boolean;
  readonly bytesPerSecond: number;
  /** Seconds left, when it can be estimated. */
  readonly etaSeconds?: number;
  readonly currentFile: string;
  readonly warnings: number;
  readonly destinations: readonly DestinationStatus[];
  /** The files finished last, newest first (up to 15). */
  readonly recentFiles: readonly string[];
  readonly lastDirectory?: DirectoryDone;
  readonly nextDirectory?: DirectoryAhead;
}

export interface Warning {
  readonly path: string;
  readonly message: string;
}

export class ProgressCounters {
  stage: BackupStage = 'scanning';
  filesDone = 0;
  bytesDone = 0;
  filesTotal = 0;
  bytesTotal = 0;
  totalsKnown = false;
  /** A stream is being read: its length is known only at its end. */
  streaming = false;
  currentFile = '';
  warnings = 0;
  private readonly started = Date.now();

  snapshot(destinations: readonly DestinationStatus[], walk: WalkDetails = { recentFiles: [] }): BackupProgress {
    const elapsedMs = Date.now() - this.started;
    const bytesPerSecond = elapsedMs > 0 ? (this.bytesDone * 1000) / elapsedMs : 0;
    const left = this.bytesTotal - this.bytesDone;
    const totalsKnown = this.totalsKnown && !this.streaming;
    const eta = totalsKnown && bytesPerSecond > 0 && left >= 0 ? left / bytesPerSecond : undefined;
    return {
      stage: this.stage,
      elapsedMs,
      filesDone: this.filesDone,
      bytesDone: this.bytesDone,
      filesTotal: Math.max(this.filesTotal, this.filesDone),
      bytesTotal: Math.max(this.bytesTotal, this.bytesDone),
      totalsKnown,
      bytesPerSecond,
      ...(eta !== undefined ? { etaSeconds: eta } : {}),
      currentFile: this.currentFile,
      warnings: this.warnings,
      destinations,
      ...walk,
    };
  }
}
