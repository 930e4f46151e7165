import { Command } from 'commander';
import { addKey, changePassphrase, listKeys, removeKey } from '../../repo/keys.ts';
import { usesEnvironment } from '../environment-help.ts';
import { formatTable, formatTime } from '../format.ts';
import { printJson, printLine, printSummary } from '../output.ts';
import { readNewPassphrase } from '../passphrase.ts';
import { addRepoOptions, withRepository, type RepoOptions } from '../repo-options.ts';

interface NewPassphraseOptions extends RepoOptions {
  readonly newPasswordFile?: string;
}

/** One result line: JSON with --json, else the human sentence. */
function report(options: RepoOptions, json: { type: string; [field: string]: unknown }, text: string): void {
  if (options.json) printJson(json);
  else printSummary(text);
}

/** A command that sets a new passphrase: from --new-password-file, COFFER_NEW_PASSWORD or typed twice. */
function settingPassphrase(command: Command): Command {
  return usesEnvironment(addRepoOptions(command, { upload: true }).option('--new-password-file <file>', 'read the new passphrase from a file'), ['COFFER_NEW_PASSWORD']);
}

export function keyCommand(): Command {
  const key = new Command('key').description('manage the passphrases of a repository');
  key.addCommand(
    addRepoOptions(new Command('list').description('list keys')).action((options: RepoOptions) =>
      withRepository(options, false, async (repo) => {
        const keys = await listKeys(repo);
        if (options.json) for (const k of keys) printJson({ type: 'key', ...k });
        else printLine(formatTable(['', 'ID', 'Created', 'User', 'Host'], keys.map((k) => [k.current ? '*' : '', k.id.slice(0, 8), formatTime(k.created), k.user, k.host])));
      }),
    ),
  );
  key.addCommand(
    settingPassphrase(new Command('add').description('add a passphrase (from --new-password-file, $COFFER_NEW_PASSWORD or typed twice)')).action((options: NewPassphraseOptions) =>
      withRepository(options, false, async (repo) => {
        const id = await addKey(repo, await readNewPassphrase(options.newPasswordFile));
        report(options, { type: 'key-added', id }, `added key ${id.slice(0, 8)}`);
      }),
    ),
  );
  key.addCommand(
    addRepoOptions(new Command('remove').description('remove a key (not the one in use)'), { upload: true })
      .argument('<id>', 'key id or unique prefix')
      .action((id: string, options: RepoOptions) =>
        withRepository(options, false, async (repo) => {
          const removed = await removeKey(repo, id);
          report(options, { type: 'key-removed', id: removed }, `removed key ${removed.slice(0, 8)}`);
        }),
      ),
  );
  key.addCommand(
    settingPassphrase(new Command('passwd').description('change the passphrase in use (to --new-password-file, $COFFER_NEW_PASSWORD or one typed twice)')).action((options: NewPassphraseOptions) =>
      withRepository(options, false, async (repo) => {
        const id = await changePassphrase(repo, await readNewPassphrase(options.newPasswordFile));
        report(options, { type: 'key-changed', id }, `changed the passphrase; the key is now ${id.slice(0, 8)}`);
      }),
    ),
  );
  return key;
}
