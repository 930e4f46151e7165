// Opening a repository from the command line: the key file that worked last time is tried first, key
// files that cannot be read are named in a warning, and the one that opened it is remembered.
import { KeyHints, resolveDataDir } from '../jobs/index.ts';
import { Repository } from '../repo/repository.ts';
import type { Store } from '../store/store.ts';
import { printWarning } from './output.ts';

export async function unlockRepository(stores: readonly Store[], passphrase: string, dataDir?: string): Promise<Repository> {
  const hints = new KeyHints(resolveDataDir(dataDir));
  const repo = await Repository.open(stores, passphrase, {
    keyHint: (repoId) => hints.get(repoId),
    onDamaged: (name, reason) => printWarning(`skipping ${name}: ${reason}`),
  });
  hints.remember(repo.config.id, repo.keyId);
  return repo;
}
