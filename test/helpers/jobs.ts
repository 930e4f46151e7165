// Shared set-up for the job layer tests: a job store on a real SQLite file in a temporary directory,
// with a clock the test moves by hand.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { JobStore, type JobStoreOptions } from '../../src/jobs/job-store.ts';

export class ManualClock {
  time = Date.UTC(2026, 0, 1, 12);
  readonly now = (): number => this.time;

  advance(ms: number): void {
    this.time += ms;
  }
}

export function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-jobs-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Fixture {
  readonly dir: string;
  readonly clock: ManualClock;
  readonly store: JobStore;
  /** Another process's view of the same database (its own connection, host and pid). */
  open(options?: JobStoreOptions): JobStore;
}

/** A store whose processes all count as alive unless a test says otherwise. */
export function jobFixture(t: TestContext, options: JobStoreOptions = {}): Fixture {
  const dir = tempDir(t);
  const clock = new ManualClock();
  const open = (more: JobStoreOptions = {}): JobStore => {
    const store = JobStore.open(dir, { now: clock.now, host: 'here', pid: 1000, isAlive: () => true, ...options, ...more });
    t.after(() => store.close());
    return store;
  };
  return { dir, clock, store: open(), open };
}

/** A plan 'photos' writing to 'ssd' and 'nas'. */
export function photosPlan(store: JobStore): number {
  return store.ensurePlan('photos', [
    { name: 'ssd', location: '/mnt/ssd/coffer' },
    { name: 'nas', location: 'sftp://backup@nas/coffer' },
  ]).id;
}
