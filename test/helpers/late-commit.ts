// A backup that commits while another command is between two of its listings: its objects are made
// beforehand in a copy of the repository and copied in, in a backup's own order (packs, then index
// files, then the snapshot), right after the other command has listed the index files.
import fs from 'node:fs';
import path from 'node:path';
import { LocalStore } from '../../src/store/local.ts';
import { backup } from './lifecycle.ts';

export interface LateBackup {
  /** The late backup's snapshot id. */
  readonly snapshotId: string;
  /** A store on the repository that commits the late backup after its first index listing while `armed`. */
  readonly store: LocalStore;
  /** Set while the command under test loads its index. */
  armed: boolean;
  /** Whether the late backup has been copied in. */
  committed: boolean;
}

/** Backs `source` up into a copy of the local repository at `root`, to be committed later through `store`. */
export async function lateBackup(root: string, source: string): Promise<LateBackup> {
  const other = `${root}.other`;
  fs.cpSync(root, other, { recursive: true });
  const snapshotId = await backup([new LocalStore(other)], [source]);
  const commit = (): void => {
    const missing = filesMissingIn(other, root).filter((rel) => !rel.startsWith('locks') && !rel.startsWith('writers'));
    const order = (rel: string): number => (rel.startsWith('data') ? 0 : rel.startsWith('index') ? 1 : 2);
    for (const rel of missing.sort((x, y) => order(x) - order(y))) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.copyFileSync(path.join(other, rel), path.join(root, rel));
    }
  };
  const late = { snapshotId, armed: false, committed: false } as LateBackup;
  class CommitAfterIndexListing extends LocalStore {
    override async *list(prefix: string) {
      yield* super.list(prefix);
      if (late.armed && !late.committed && prefix.startsWith('index')) {
        late.committed = true;
        commit();
      }
    }
  }
  return Object.assign(late, { store: new CommitAfterIndexListing(root) });
}

/** The files under `from` that `to` lacks, as paths relative to `from`. */
function filesMissingIn(from: string, to: string): string[] {
  return (fs.readdirSync(from, { recursive: true, encoding: 'utf8' }) as string[]).filter((rel) => fs.statSync(path.join(from, rel)).isFile() && !fs.existsSync(path.join(to, rel)));
}
