import v8 from 'node:v8';

// Node.js flags every Coffer process starts with. Under Coffer's allocation rate V8 grows an isolate's
// young generation up to 64 MiB semi-spaces, mostly free at the peak; at 8 MiB a kernel-tree restore peaks
// ~90 MiB lower and its backup ~45 MiB at the same CPU (smaller caps cost its backup 3–5 CPU-s more:
// bench/PROFILE.md, "Young generation capped"). The flag is every isolate's, and it overrides a
// Worker's resourceLimits.maxYoungGenerationSizeMb. A V8 flag only takes effect as the process starts
// (v8.setFlagsFromString leaves the main isolate's new space as it is), so it is on each command line that
// starts Coffer: bin/coffer.js's sh line (which must say the same: test/node-flags.test.ts), the
// launcher's re-run on the bundled Node (process.execArgv), the systemd units, and the forked scale-out
// workers.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

// Environment every Coffer process starts with, where it starts the others (the same places as the
// flags). glibc gives each thread that allocates a malloc arena of its own, up to 8 per core, and each
// keeps what its thread freed: two caps the backup's and the restore's peak RSS 20–25 MiB lower at the
// same CPU (bench/PROFILE.md, "Two malloc arenas"). glibc reads it only as the process starts; one set by
// the user wins.
export const NODE_ENVIRONMENT: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The semi-space size, in MiB, of the isolates a backup starts (see limitHeapsForBackup). */
export const BACKUP_WORKER_SEMI_SPACE_MB = 2;

/**
 * V8's heap settings for a backup, set as the backup command starts. V8 reads these flags whenever it
 * sets the next limit or makes an isolate, so they can be set at run time. Only the backup command and a
 * scale-out worker process (which only backs up) set them: a command with a big live heap (prune or check
 * of millions of blobs) would collect more often for nothing.
 * - How far an old generation grows past what survived the last full collection: left to itself V8
 *   grows it ~3 ×, and the backup's main thread promotes per-file objects that die soon after (27 MiB
 *   live, 82 MiB before the next full collection on the kernel tree); at 30 % the kernel initial backup
 *   peaks ~50 MiB lower at the same CPU (bench/PROFILE.md, "Backup memory").
 * - 2 MiB semi-spaces for the isolates started from now on (the chunk workers, the counter): what they
 *   handle lives in buffers outside V8's heap, and at 8 MiB each chunk worker's young generation grew to
 *   ~17 MiB of mostly free space; the kernel initial backup peaks ~34 MiB lower at the same CPU
 *   (bench/PROFILE.md, "Worker young generation"). The main isolate keeps the 8 MiB of its command line
 *   (its heap was sized as it was made), where less costs the walk 3–5 CPU-s on the kernel tree.
 */
export function limitHeapsForBackup(): void {
  v8.setFlagsFromString('--heap-growing-percent=30');
  v8.setFlagsFromString(`--max-semi-space-size=${BACKUP_WORKER_SEMI_SPACE_MB}`);
}

/** NODE_ENVIRONMENT as the value of a systemd unit's Environment= line. */
export function systemdEnvironment(): string {
  return Object.entries(NODE_ENVIRONMENT)
    .map(([name, value]) => `"${name}=${value}"`)
    .join(' ');
}
