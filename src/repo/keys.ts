// Several passphrases per repository: each is a key file wrapping the same master keys.
import { FormatError } from '../format/bytes.ts';
import { contentId } from '../format/crypto.ts';
import { decodeKeyFile, encodeKeyFile, wrapKeys } from '../format/keyfile.ts';
import { idOf } from '../store/store.ts';
import { Repository, RepositoryError, whoAmI } from './repository.ts';

export interface KeyInfo {
  readonly id: string;
  readonly created: string;
  readonly host: string;
  readonly user: string;
  readonly current: boolean;
}

async function keyNames(repo: Repository): Promise<string[]> {
  const names: string[] = [];
  for await (const obj of repo.stores[0]!.list('keys')) names.push(obj.name);
  return names.sort();
}

/** The key files and who made them; one that cannot be read is reported (onDamaged) and left out. */
export async function listKeys(repo: Repository): Promise<KeyInfo[]> {
  const keys: KeyInfo[] = [];
  for (const name of await keyNames(repo)) {
    let file;
    try {
      file = decodeKeyFile(await repo.read(name, (b) => b), name);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      repo.onDamaged?.(name, err.message);
      continue;
    }
    keys.push({ id: idOf(name), created: file.created, host: file.host, user: file.user, current: idOf(name) === repo.keyId });
  }
  return keys.sort((a, b) => a.created.localeCompare(b.created));
}

/** Wraps the master keys with a new passphrase on every replica; returns the new key id. */
export async function addKey(repo: Repository, passphrase: string): Promise<string> {
  const bytes = encodeKeyFile(await wrapKeys(repo.keys, passphrase, whoAmI()));
  const name = `keys/${contentId(bytes)}`;
  for (const store of repo.stores) await store.put(name, bytes);
  return idOf(name);
}

/** Removes a key by id or unique prefix; the key in use and the last key cannot be removed. */
export async function removeKey(repo: Repository, idPrefix: string): Promise<string> {
  const names = await keyNames(repo);
  const matches = names.filter((n) => idOf(n).startsWith(idPrefix));
  if (matches.length === 0) throw new RepositoryError(`no key ${idPrefix}; list them with coffer key list`);
  if (matches.length > 1) throw new RepositoryError(`key prefix ${idPrefix} is ambiguous; give more digits`);
  const name = matches[0]!;
  if (idOf(name) === repo.keyId) throw new RepositoryError('refusing to remove the key in use; open the repository with another passphrase to remove this one');
  if (names.length === 1) throw new RepositoryError('refusing to remove the last key');
  for (const store of repo.stores) await store.delete(name);
  return idOf(name);
}

/** Replaces the key in use by one for a new passphrase. */
export async function changePassphrase(repo: Repository, passphrase: string): Promise<string> {
  const added = await addKey(repo, passphrase);
  for (const store of repo.stores) await store.delete(`keys/${repo.keyId}`);
  return added;
}
