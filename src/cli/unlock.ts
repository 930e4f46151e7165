// Opening a repository from the command line: the key file that worked last time is tried first, key
// files that cannot be read are named in a warning, and the one that opened it is remembered.
import { resolveDataDir } from '../jobs/index.ts';
import { openWithKeyHints } from '../jobs/key-hints.ts';
import type { Repository } from '../repo/repository.ts';
import type { Store } from '../store/store.ts';
import { printWarning } from './output.ts';

export function unlockRepository(stores: readonly Store[], passphrase: string, dataDir?: string): Promise<Repository> {
  return openWithKeyHints(stores, passphrase, resolveDataDir(dataDir), (name, reason) => printWarning(`skipping ${name}: ${reason}`));
}
