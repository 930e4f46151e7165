import { Command } from 'commander';
import { initRepository } from '../../repo/repository.ts';
import { printJson, printSummary } from '../output.ts';
import { readInitialPassphrase } from '../passphrase.ts';
import { addRepoOptions, openStores, repositorySettings, type RepoOptions } from '../repo-options.ts';

export function initCommand(): Command {
  return addRepoOptions(new Command('init').description('create a repository (several --repo: one repository replicated at each location)'), { upload: true }).action(async (options: RepoOptions) => {
    const settings = await repositorySettings(options);
    const stores = openStores(settings);
    try {
      const passphrase = await readInitialPassphrase(options, settings.passphrase);
      const config = await initRepository(stores, passphrase);
      if (options.json) printJson({ type: 'init', id: config.id, locations: stores.map((s) => s.location) });
      else for (const store of stores) printSummary(`created repository ${config.id.slice(0, 8)} at ${store.location}`);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
}
