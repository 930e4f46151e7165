// Opening the master keys with a passphrase: each key file of the repository is a candidate. Key files
// are untrusted input too: one that cannot be read is skipped (and reported), and the time spent on
// key derivation is bounded, so decoys planted at the highest KDF cost cannot stall every open. The key
// that opened the repository last time is tried first; then the cheapest ones.
import { FormatError } from '../format/bytes.ts';
import { AuthenticationError, type MasterKeys } from '../format/crypto.ts';
import { decodeKeyFile, kdfCost, MAX_KDF_COST, unwrapKeys, type KeyFile } from '../format/keyfile.ts';
import { StoreError, idOf, type Store } from '../store/store.ts';
import { RepositoryError, WrongPassphraseError } from './errors.ts';

/** Key derivation work tried in one open at most: two key files at the highest cost readers accept. */
const UNLOCK_BUDGET = 2 * MAX_KDF_COST;

export interface UnlockOptions {
  /** Id of the key file to try first (the one that opened this repository last time, say). */
  readonly preferKey?: string;
  /** Told about each key file that cannot be read (it is skipped). */
  readonly onDamaged?: (name: string, reason: string) => void;
}

export async function unlock(store: Store, passphrase: string, options: UnlockOptions = {}): Promise<{ keys: MasterKeys; keyId: string }> {
  const candidates: { name: string; file: KeyFile }[] = [];
  let listed = 0;
  for await (const obj of store.list('keys')) {
    listed++;
    try {
      candidates.push({ name: obj.name, file: decodeKeyFile(await store.get(obj.name), obj.name) });
    } catch (err) {
      if (!(err instanceof FormatError || (err instanceof StoreError && err.kind === 'permanent'))) throw err;
      options.onDamaged?.(obj.name, err.message);
    }
  }
  if (listed === 0) throw new RepositoryError(`${store.location} has no key files; the repository is damaged`);
  const preferred = (c: { name: string }): number => (idOf(c.name) === options.preferKey ? 0 : 1);
  candidates.sort((a, b) => preferred(a) - preferred(b) || kdfCost(a.file.kdf) - kdfCost(b.file.kdf) || (a.name < b.name ? -1 : 1));
  let spent = 0;
  let untried = 0;
  for (const { name, file } of candidates) {
    const cost = kdfCost(file.kdf);
    if (spent + cost > UNLOCK_BUDGET) {
      untried++;
      continue;
    }
    spent += cost;
    try {
      return { keys: await unwrapKeys(file, passphrase, name), keyId: idOf(name) };
    } catch (err) {
      if (!(err instanceof AuthenticationError)) throw err;
    }
  }
  if (candidates.length === 0) throw new RepositoryError(`${store.location} has no readable key file; the repository is damaged (see the warnings above)`);
  const notTried = untried > 0 ? ` (${untried} costly key files were not tried: opening would have taken too long; remove keys you do not know with coffer key remove)` : '';
  throw new WrongPassphraseError(`wrong passphrase: no key of this repository opens with it${notTried}; check where the passphrase comes from (coffer doctor names the source)`);
}
