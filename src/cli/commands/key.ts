import { Command } from 'commander';
import { addKey, changePassphrase, listKeys, removeKey } from '../../repo/keys.ts';
import { formatTable } from '../format.ts';
import { printJson, printLine } from '../output.ts';
import { readNewPassphrase } from '../passphrase.ts';
import { addRepoOptions, openRepository, type RepoOptions } from '../repo-options.ts';

interface NewPassphraseOptions extends RepoOptions {
  readonly newPasswordFile?: string;
}

function newPassphrase(options: NewPassphraseOptions): Promise<string> {
  return readNewPassphrase({ file: options.newPasswordFile, env: process.env.COFFER_NEW_PASSWORD });
}

export function keyCommand(): Command {
  const key = new Command('key').description('manage the passphrases of a repository');
  key.addCommand(
    addRepoOptions(new Command('list').description('list keys')).action(async (options: RepoOptions) => {
      const repo = await openRepository(options, { loadIndex: false });
      try {
        const keys = await listKeys(repo);
        if (options.json) printJson(keys);
        else printLine(formatTable(['', 'ID', 'Created', 'User', 'Host'], keys.map((k) => [k.current ? '*' : '', k.id.slice(0, 8), k.created, k.user, k.host])));
      } finally {
        await repo.close();
      }
    }),
  );
  key.addCommand(
    addRepoOptions(new Command('add').description('add a passphrase (from --new-password-file, $COFFER_NEW_PASSWORD or a prompt)'))
      .option('--new-password-file <file>', 'read the new passphrase from a file')
      .action(async (options: NewPassphraseOptions) => {
        const repo = await openRepository(options, { loadIndex: false });
        try {
          const id = await addKey(repo, await newPassphrase(options));
          if (options.json) printJson({ type: 'key-added', id });
          else printLine(`added key ${id.slice(0, 8)}`);
        } finally {
          await repo.close();
        }
      }),
  );
  key.addCommand(
    addRepoOptions(new Command('remove').description('remove a key (not the one in use)'))
      .argument('<id>', 'key id or unique prefix')
      .action(async (id: string, options: RepoOptions) => {
        const repo = await openRepository(options, { loadIndex: false });
        try {
          const removed = await removeKey(repo, id);
          if (options.json) printJson({ type: 'key-removed', id: removed });
          else printLine(`removed key ${removed.slice(0, 8)}`);
        } finally {
          await repo.close();
        }
      }),
  );
  key.addCommand(
    addRepoOptions(new Command('passwd').description('change the passphrase in use'))
      .option('--new-password-file <file>', 'read the new passphrase from a file')
      .action(async (options: NewPassphraseOptions) => {
        const repo = await openRepository(options, { loadIndex: false });
        try {
          const id = await changePassphrase(repo, await newPassphrase(options));
          if (options.json) printJson({ type: 'key-changed', id });
          else printLine(`changed the passphrase; the key is now ${id.slice(0, 8)}`);
        } finally {
          await repo.close();
        }
      }),
  );
  return key;
}
