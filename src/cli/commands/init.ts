import { Command } from 'commander';
import { initRepository } from '../../repo/repository.ts';
import { readNewPassphrase, fromCommand } from '../passphrase.ts';
import { addRepoOptions, openStores, type RepoOptions } from '../repo-options.ts';
import { printJson, printLine } from '../output.ts';

export function initCommand(): Command {
  return addRepoOptions(new Command('init').description('create a repository (several --repo: one repository replicated at each location)')).action(
    async (options: RepoOptions) => {
      const stores = openStores(options);
      try {
        const passphrase = await readNewPassphrase({
          file: options.passwordFile,
          env: process.env.COFFER_PASSWORD,
          ...(options.passwordCommand ? { fallback: async () => fromCommand(options.passwordCommand!) } : {}),
        });
        const config = await initRepository(stores, passphrase);
        if (options.json) printJson({ type: 'init', id: config.id, locations: stores.map((s) => s.location) });
        else for (const store of stores) printLine(`created repository ${config.id.slice(0, 8)} at ${store.location}`);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    },
  );
}
