import { Command } from 'commander';
import { removeGoneWriters, WriterSession, type ObservedWriter } from '../../repo/writer-markers.ts';
import { printJson, printSummary } from '../output.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';

interface UnlockOptions extends RepoOptions {
  readonly removeAll?: boolean;
}

function describeWriter(w: ObservedWriter, storageNow: number): string {
  const m = w.marker;
  const minutes = Math.round((storageNow - w.lastSeen) / 60_000);
  const state = w.liveness === 'dead' ? 'its process is gone' : w.liveness === 'expired' ? `no heartbeat for ${minutes} min` : `live, last heartbeat ${minutes} min ago`;
  return `${m.exclusive ? 'exclusive ' : ''}${m.command} on ${m.host} (pid ${m.pid}, started ${m.started}) in ${w.store.location}: ${state}`;
}

export function unlockCommand(): Command {
  return addRepoOptions(new Command('unlock').description('remove the markers of processes that are gone (they never block backups; an exclusive one blocks prune until it expires)'))
    .option('--remove-all', 'also remove live markers (only for processes you know are gone: a running prune or backup loses its protection)')
    .action(async (options: UnlockOptions) => {
      await withRepository(options, false, async (repo) => {
        const session = await WriterSession.start(repo, { command: 'unlock' });
        try {
          const writers = await removeGoneWriters(session, { all: options.removeAll === true });
          const removed = writers.filter((w) => w.removed).length;
          for (const { writer: w, removed: remove } of writers) {
            if (options.json) printJson({ type: remove ? 'removed' : 'kept', location: w.store.location, ...w.marker, liveness: w.liveness, names: w.names });
            else printSummary(`${remove ? 'removed' : 'kept'}: ${describeWriter(w, session.storageNow(w.store))}`);
          }
          if (options.json) printJson({ type: 'summary', removed, kept: writers.length - removed });
          else printSummary(writers.length === 0 ? 'no markers: nothing to remove' : `removed ${removed} marker${removed === 1 ? '' : 's'}${writers.length > removed ? `, kept ${writers.length - removed} of running processes (--remove-all removes them too)` : ''}`);
        } finally {
          await session.end();
        }
      });
    });
}
