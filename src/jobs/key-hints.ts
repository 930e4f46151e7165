// Which key file opened each repository last time, by repository id: the next open tries it first, so
// key files planted at the highest KDF cost cost nothing once a passphrase has worked. Kept in the data
// directory (0600), never in the repository, and holding no secret: a key file id says nothing about
// the passphrase.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Repository } from '../repo/repository.ts';
import type { Store } from '../store/store.ts';

const FILE = 'key-hints.json';

class KeyHints {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, FILE);
  }

  private read(): Record<string, string> {
    try {
      const value: unknown = JSON.parse(fs.readFileSync(this.file, 'utf8'));
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, string>) : {};
    } catch {
      // Missing or damaged: it is only a hint.
      return {};
    }
  }

  get(repoId: string): string | undefined {
    const hint = this.read()[repoId];
    return typeof hint === 'string' ? hint : undefined;
  }

  /** Remembers `keyId` for `repoId`; a data directory that cannot be written only loses the hint. */
  remember(repoId: string, keyId: string): void {
    const hints = this.read();
    if (hints[repoId] === keyId) return;
    hints[repoId] = keyId;
    const tmp = `${this.file}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      fs.writeFileSync(tmp, JSON.stringify(hints), { mode: 0o600 });
      fs.renameSync(tmp, this.file);
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  }
}

/**
 * Opens a repository for a program with a data directory (the CLI, the daemon): the key file that
 * worked last time is tried first, each key file that cannot be read is reported to `onDamaged`
 * (and skipped), and the key that opened it is remembered.
 */
export async function openWithKeyHints(stores: readonly Store[], passphrase: string, dataDir: string, onDamaged: (name: string, reason: string) => void): Promise<Repository> {
  const hints = new KeyHints(dataDir);
  const repo = await Repository.open(stores, passphrase, { keyHint: (repoId) => hints.get(repoId), onDamaged });
  hints.remember(repo.config.id, repo.keyId);
  return repo;
}
