// Live counters of a backup run, read by whoever renders progress (terminal, JSON lines, job database).
import type { DestinationStatus } from '../destination.ts';
import type { DirectoryAhead, DirectoryDone, WalkDetails } from './walk-progress.ts';

export type BackupStage = 'scanning' | 'dumping' | 'packing' | 'uploading' | 'committing' | 'done';

export interface BackupProgress {
  readonly stage: BackupStage;
  readonly elapsedMs: number;
  readonly filesDone: number;
  readonly bytesDone: number;
  /**
   * Totals from the counter thread, final once `totalsKnown`; or, with `totalsEstimated`, the parent
   * snapshot's totals, known (for the ETA) until the walk passes them and they grow with what it found.
   */
  readonly filesTotal: number;
  readonly bytesTotal: number;
  readonly totalsKnown: boolean;
  /** Present (true) while the totals are the parent snapshot's, not counted. */
  readonly totalsEstimated?: true;
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
  /** The totals are the parent snapshot's: no counter walks the sources a second time. */
  private estimated = false;
  private walkOver = false;
  /** A stream is being read: its length is known only at its end. */
  streaming = false;
  currentFile = '';
  warnings = 0;
  private readonly started = Date.now();

  /** Totals from the parent snapshot: an estimate the walk may pass (it changes nothing that is done). */
  estimateTotals(files: number, bytes: number): void {
    this.filesTotal = files;
    this.bytesTotal = bytes;
    this.estimated = true;
  }

  /** Totals from the counter thread, unless the walk has ended first (it may on a loaded machine). */
  counted(files: number, bytes: number, done: boolean): void {
    if (this.walkOver) return;
    this.filesTotal = files;
    this.bytesTotal = bytes;
    this.totalsKnown = done;
  }

  /**
   * Every file is read: what was done is the total, whatever the estimate or the counter said. A first
   * backup that ended before its counter did showed totals that were still counting, with no ETA, in
   * its last progress line.
   */
  walkEnded(): void {
    this.walkOver = true;
    this.filesTotal = this.filesDone;
    this.bytesTotal = this.bytesDone;
    this.estimated = false;
    this.totalsKnown = true;
  }

  snapshot(destinations: readonly DestinationStatus[], walk: WalkDetails = { recentFiles: [] }): BackupProgress {
    const elapsedMs = Date.now() - this.started;
    const bytesPerSecond = elapsedMs > 0 ? (this.bytesDone * 1000) / elapsedMs : 0;
    const left = this.bytesTotal - this.bytesDone;
    // An estimate the walk has passed says nothing about what is left.
    const withinEstimate = this.filesDone <= this.filesTotal && this.bytesDone <= this.bytesTotal;
    const totalsKnown = (this.estimated ? withinEstimate : this.totalsKnown) && !this.streaming;
    const eta = totalsKnown && bytesPerSecond > 0 && left >= 0 ? left / bytesPerSecond : undefined;
    return {
      stage: this.stage,
      elapsedMs,
      filesDone: this.filesDone,
      bytesDone: this.bytesDone,
      filesTotal: Math.max(this.filesTotal, this.filesDone),
      bytesTotal: Math.max(this.bytesTotal, this.bytesDone),
      totalsKnown,
      ...(this.estimated ? { totalsEstimated: true as const } : {}),
      bytesPerSecond,
      ...(eta !== undefined ? { etaSeconds: eta } : {}),
      currentFile: this.currentFile,
      warnings: this.warnings,
      destinations,
      ...walk,
    };
  }
}
