// Rewrites a snapshot the way Coffer 0.1.0 laid it out (one node per source at the top, named by its
// last component, no `layout` field), so tests can run today's code against the old layout with
// live source files (same inodes, so unchanged files and trees are recognised).
import { compress } from '../../src/format/compression.ts';
import { blobId } from '../../src/format/crypto.ts';
import { BlobType, PackWriter } from '../../src/format/pack.ts';
import { encodeTree, type TreeNode } from '../../src/format/tree.ts';
import { legacyTopLevelNames, SnapshotView } from '../../src/engine/snapshot-view.ts';
import { Repository } from '../../src/repo/repository.ts';
import { openStore } from '../../src/store/open-store.ts';
import { packName } from '../../src/store/store.ts';

/** Writes the 0.1.0 form of snapshot `id` and deletes the new one; returns the old form's id. */
export async function rewriteAsLegacy(location: string, passphrase: string, id: string): Promise<string> {
  const repo = await Repository.open([openStore(location)], passphrase);
  try {
    await repo.loadIndex();
    const name = `snapshots/${id}`;
    const current = await repo.loadSnapshot(name);
    const view = await SnapshotView.open(repo, current);
    const { layout: _layout, ...snapshot } = current;
    const names = legacyTopLevelNames(snapshot.paths);
    const top: TreeNode[] = [];
    for (const [i, source] of snapshot.paths.entries()) top.push({ ...(await view.find(source)).node!, name: Buffer.from(names[i]!) });
    const bytes = encodeTree(top);
    const treeId = blobId(repo.idKey, bytes);
    const packer = new PackWriter(repo.keys.dataKey, { capacity: bytes.length + 4096 });
    packer.add(BlobType.Tree, treeId, compress(bytes), bytes.length);
    const pack = packer.seal();
    const store = repo.stores[0]!;
    await store.put(packName(pack.id), pack.bytes);
    const index = repo.sealIndex([{ id: Buffer.from(pack.id, 'hex'), salt: pack.salt, entries: pack.entries }]);
    await store.put(index.name, index.bytes);
    const sealed = repo.sealSnapshot({ ...snapshot, tree: treeId.toString('hex') });
    await store.put(sealed.name, sealed.bytes);
    await store.delete(name);
    return sealed.name.slice('snapshots/'.length);
  } finally {
    await repo.close();
  }
}
