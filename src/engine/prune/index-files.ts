// Prune's view of the index files: it loads them like every reader does, but remembers which packs
// each file lists, so that it can rewrite exactly the files that mention a pack it deletes or dooms (and
// merge small ones), leaving big files of kept packs as they are.
import { IndexEncoder, scanIndex, type IndexVisitor } from '../../format/index-file.ts';
import { ID_BYTES } from '../../format/crypto.ts';
import { IdTable } from '../../repo/id-table.ts';
import type { Repository } from '../../repo/repository.ts';
import type { Store } from '../../store/store.ts';

export interface IndexFileInfo {
  readonly name: string;
  readonly blobs: number;
  /** The ids of the packs it lists, 32 bytes each. */
  readonly packs: Buffer;
}

export function* packIdsOf(file: IndexFileInfo): Iterable<Buffer> {
  for (let i = 0; i < file.packs.length; i += ID_BYTES) yield file.packs.subarray(i, i + ID_BYTES);
}

/** An index file smaller than this (in blobs) is merged into others when prune rewrites the index. */
export const SMALL_INDEX_BLOBS = 10_000;
/** New index files hold up to this many blobs (~4.5 MB before compression). */
export const INDEX_FILE_BLOBS = 100_000;

export class IndexFiles {
  readonly files: IndexFileInfo[] = [];
  private readonly loaded = new Set<string>();

  /** Files written by this process, whose packs are in the index already: not read again. */
  markLoaded(names: readonly string[]): void {
    for (const name of names) this.loaded.add(name);
  }

  /**
   * Loads the index files not loaded yet; packs that `isDoomed` go to the held-back index. Returns the
   * number of files read. Unreadable files are reported and skipped (their packs look unindexed, and
   * prune reads their headers instead).
   */
  async loadNew(repo: Repository, isDoomed: (packId: Uint8Array) => boolean, onBlobs?: (blobs: number) => void): Promise<number> {
    const names = new Set<string>();
    for (const store of repo.stores) for await (const o of store.list('index')) if (!this.loaded.has(o.name)) names.add(o.name);
    for (const name of [...names].sort()) {
      this.loaded.add(name);
      const ids: Buffer[] = [];
      let blobs = 0;
      try {
        await repo.scanIndexFile(
          name,
          (id) => (isDoomed(id) ? repo.heldBack : repo.index),
          (id, count) => {
            ids.push(Buffer.from(id));
            blobs += count;
          },
        );
      } catch (err) {
        repo.onDamaged?.(name, (err as Error).message);
        continue;
      }
      this.files.push({ name, blobs, packs: Buffer.concat(ids) });
      onBlobs?.(blobs);
    }
    return names.size;
  }
}

/**
 * What becomes of a pack in a rewrite: kept; doomed now (its file is rewritten, its entries go to a file
 * of doomed packs); held (doomed by an earlier record: it goes with the doomed if its file is rewritten
 * anyway, but is no reason to rewrite it); dropped (deleted now: listed nowhere).
 */
export type PackFate = 'keep' | 'doom' | 'held' | 'drop';

export interface RewriteResult {
  /** Old files whose content is now in new ones (and which are deleted once a record names them). */
  readonly superseded: string[];
  /** New files listing only doomed packs, with those packs. */
  readonly doomedFiles: { name: string; packs: Buffer[] }[];
  readonly written: number;
  /** Names of the new files. */
  readonly names: string[];
}

/**
 * Writes the index anew where needed: every old file that lists a pack whose fate is not 'keep', every
 * small file, and every file `mustRewrite` names, is read again and its packs go to new files — kept packs to some, doomed packs to
 * others, dropped packs nowhere — together with `extra` packs (new, adopted) that no file lists. Each
 * new file is durable on every store before this returns.
 */
export async function rewriteIndex(
  repo: Repository,
  files: IndexFiles,
  fate: (packId: Uint8Array) => PackFate,
  extra: IndexEncoder,
  stores: readonly Store[],
  mustRewrite: (name: string) => boolean,
  onWritten?: () => void,
): Promise<RewriteResult> {
  const rewrite = (f: IndexFileInfo): boolean => mustRewrite(f.name) || f.blobs < SMALL_INDEX_BLOBS || [...packIdsOf(f)].some((id) => fate(id) === 'doom' || fate(id) === 'drop');
  const toRewrite = files.files.filter(rewrite);
  const superseded = toRewrite.map((f) => f.name);
  // Kept and held packs go to files of their own, so once the small files are one of kept packs and
  // one of held (rescued) packs at most, rewriting would only write them again: nothing to gain.
  const kindOf = (f: IndexFileInfo): string => {
    const fates = new Set([...packIdsOf(f)].map(fate));
    return fates.size === 1 && (fates.has('keep') || fates.has('held')) && !mustRewrite(f.name) ? [...fates][0]! : 'other';
  };
  const kinds = toRewrite.map(kindOf);
  if (extra.packs === 0 && !kinds.includes('other') && new Set(kinds).size === kinds.length) {
    return { superseded: [], doomedFiles: [], written: 0, names: [] };
  }
  // Packs that stay listed in a file that is not rewritten are not listed again.
  const emitted = new IdTable(0);
  for (const f of files.files) if (!rewrite(f)) for (const id of packIdsOf(f)) emitted.add(id, []);
  const doomedFiles: { name: string; packs: Buffer[] }[] = [];
  const names: string[] = [];
  let written = 0;
  // Entries are copied from a scan of each old file straight into the new files' bytes (no object per
  // blob: at 10^7 blobs, objects cost more than the whole typed-array index).
  const batches = { keep: { encoder: new IndexEncoder(), packs: [] as Buffer[] }, doom: { encoder: new IndexEncoder(), packs: [] as Buffer[] } };
  const sealed: { name: string; bytes: Buffer; kind: 'keep' | 'doom'; packs: Buffer[] }[] = [];
  const close = (kind: 'keep' | 'doom'): void => {
    const batch = batches[kind];
    if (batch.encoder.packs === 0) return;
    sealed.push({ ...repo.sealIndex(batch.encoder), kind, packs: batch.packs });
    batches[kind] = { encoder: new IndexEncoder(), packs: [] };
  };
  const upload = async (): Promise<void> => {
    for (let file = sealed.shift(); file; file = sealed.shift()) {
      await Promise.all(stores.map((s) => s.put(file.name, file.bytes)));
      if (file.kind === 'doom') doomedFiles.push({ name: file.name, packs: file.packs });
      names.push(file.name);
      written++;
      onWritten?.();
    }
  };
  let current: IndexEncoder | undefined;
  const copier: IndexVisitor = {
    pack: (id, salt, blobs) => {
      const f = fate(id);
      current = undefined;
      if (f === 'drop' || emitted.add(id, []) < 0) return;
      const kind = f === 'keep' ? 'keep' : 'doom';
      if (batches[kind].encoder.blobs >= INDEX_FILE_BLOBS) close(kind);
      current = batches[kind].encoder;
      current.pack(id, salt, blobs);
      batches[kind].packs.push(Buffer.from(id));
    },
    blob: (type, id, offset, length, rawLength) => current?.blob(type, id, offset, length, rawLength),
  };
  scanIndex(extra.finish(), 'packs no index file lists', copier);
  // Every file here scanned cleanly when it was loaded, and its name is its content's hash: a scan
  // cannot stop half-way through a pack and leave a new file with fewer entries than it declares.
  for (const f of toRewrite) {
    await repo.visitIndexFile(f.name, copier);
    await upload();
  }
  close('keep');
  close('doom');
  await upload();
  return { superseded, doomedFiles, written, names };
}
