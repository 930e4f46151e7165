// Passphrases: typed on a real terminal (twice for a new one), and read from the one order of sources
// that every command uses (docs in src/cli/passphrase.ts and the README).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { passphraseSource } from '../src/cli/passphrase.ts';
import { coffer, ok, tempDir } from './helpers/cli.ts';
import { onTerminal } from './helpers/terminal.ts';

/** No passphrase in the environment: the terminal is the only source left. */
const NO_SOURCE = { COFFER_PASSWORD: undefined, COFFER_PASSWORD_FILE: undefined, COFFER_PASSWORD_COMMAND: undefined, COFFER_NEW_PASSWORD: undefined };

function opensWith(repo: string, passphrase: string): boolean {
  return coffer(['snapshots', '--repo', repo], { env: { ...NO_SOURCE, COFFER_PASSWORD: passphrase } }).code === 0;
}

test('init on a terminal asks for a new passphrase twice, without echo, and creates the repository', async (t) => {
  const repo = path.join(tempDir(t), 'repo');
  const r = await onTerminal(['init', '--repo', repo], [
    { after: 'new passphrase: ', type: 'tiger lily\r' },
    { after: 'repeat it: ', type: 'tiger lily\r' },
  ], { env: NO_SOURCE });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /created repository [0-9a-f]{8}/);
  assert.doesNotMatch(r.output, /tiger lily/, 'the passphrase is not echoed');
  assert.doesNotMatch(r.output, /unexpected error|aborted/);
  assert.ok(opensWith(repo, 'tiger lily'));
});

test('two different answers, Ctrl-C and Ctrl-D at the prompt: a one-line error and no repository', async (t) => {
  const dir = tempDir(t);
  const mismatch = await onTerminal(['init', '--repo', path.join(dir, 'a')], [
    { after: 'new passphrase: ', type: 'tiger lily\r' },
    { after: 'repeat it: ', type: 'tiger lilly\r' },
  ], { env: NO_SOURCE });
  assert.equal(mismatch.code, 1, mismatch.output);
  assert.match(mismatch.output, /coffer: the two passphrases differ; nothing was changed/);
  assert.ok(!fs.existsSync(path.join(dir, 'a', 'config')));

  const cancelled = await onTerminal(['init', '--repo', path.join(dir, 'b')], [{ after: 'new passphrase: ', type: 'tig\x03' }], { env: NO_SOURCE });
  assert.equal(cancelled.code, 130, cancelled.output);
  assert.match(cancelled.output, /coffer: cancelled at the passphrase prompt; nothing was changed/);
  assert.ok(!fs.existsSync(path.join(dir, 'b', 'config')));

  const ended = await onTerminal(['init', '--repo', path.join(dir, 'c')], [{ after: 'new passphrase: ', type: '\x04' }], { env: NO_SOURCE });
  assert.equal(ended.code, 1, ended.output);
  assert.match(ended.output, /coffer: no passphrase entered/);
});

test('key add and key passwd take the new passphrase typed twice; the old one is asked first', async (t) => {
  const repo = path.join(tempDir(t), 'repo');
  ok(['init', '--repo', repo], { env: { ...NO_SOURCE, COFFER_PASSWORD: 'first one' } });
  const added = await onTerminal(['key', 'add', '--repo', repo], [
    { after: 'passphrase: ', type: 'first one\r' },
    { after: 'new passphrase: ', type: 'second one\r' },
    { after: 'repeat it: ', type: 'second one\r' },
  ], { env: NO_SOURCE });
  assert.equal(added.code, 0, added.output);
  assert.match(added.output, /added key [0-9a-f]{8}/);
  assert.ok(opensWith(repo, 'second one'));

  const changed = await onTerminal(['key', 'passwd', '--repo', repo], [
    { after: 'passphrase: ', type: 'second one\r' },
    { after: 'new passphrase: ', type: 'third one\r' },
    { after: 'repeat it: ', type: 'third one\r' },
  ], { env: NO_SOURCE });
  assert.equal(changed.code, 0, changed.output);
  assert.ok(opensWith(repo, 'third one'));
  assert.ok(!opensWith(repo, 'second one'));
  assert.ok(opensWith(repo, 'first one'));
});

test('one order of passphrase sources for init and every other command: flags, plan, *_FILE/_COMMAND variables, COFFER_PASSWORD', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'pw-file');
  fs.writeFileSync(file, 'from the file\n');
  const command = 'echo from the command';

  // init used to take COFFER_PASSWORD before --password-command; now the flag wins, as everywhere.
  const a = path.join(dir, 'a');
  ok(['init', '--repo', a, '--password-command', command], { env: { ...NO_SOURCE, COFFER_PASSWORD: 'from the variable' } });
  assert.ok(opensWith(a, 'from the command'));
  ok(['snapshots', '--repo', a, '--password-command', command], { env: { ...NO_SOURCE, COFFER_PASSWORD: 'from the variable' } });

  const b = path.join(dir, 'b');
  ok(['init', '--repo', b], { env: { ...NO_SOURCE, COFFER_PASSWORD_FILE: file, COFFER_PASSWORD: 'from the variable' } });
  assert.ok(opensWith(b, 'from the file'));
  ok(['snapshots', '--repo', b], { env: { ...NO_SOURCE, COFFER_PASSWORD_FILE: file, COFFER_PASSWORD: 'from the variable' } });
  ok(['snapshots', '--repo', a], { env: { ...NO_SOURCE, COFFER_PASSWORD_COMMAND: command } });
  // A flag beats a variable of the other kind.
  ok(['snapshots', '--repo', b, '--password-file', file], { env: { ...NO_SOURCE, COFFER_PASSWORD_COMMAND: 'exit 1' } });

  const both = coffer(['snapshots', '--repo', a, '--password-file', file, '--password-command', command], { env: NO_SOURCE });
  assert.equal(both.code, 1);
  assert.match(both.stderr, /^coffer: give --password-file or --password-command, not both\n$/);
  const bothVariables = coffer(['snapshots', '--repo', a], { env: { ...NO_SOURCE, COFFER_PASSWORD_FILE: file, COFFER_PASSWORD_COMMAND: command } });
  assert.match(bothVariables.stderr, /^coffer: give COFFER_PASSWORD_FILE or COFFER_PASSWORD_COMMAND, not both\n$/);
  const none = coffer(['snapshots', '--repo', a], { env: NO_SOURCE });
  assert.match(none.stderr, /^coffer: no passphrase given and no terminal to ask on: use --password-file/);
});

test('passphraseSource: the order, plan between flags and variables', () => {
  const env = { COFFER_PASSWORD: 'p', COFFER_PASSWORD_FILE: '/f', COFFER_PASSWORD_COMMAND: '' };
  assert.equal(passphraseSource({ passwordCommand: 'c' }, { passwordFile: '/plan' }, env)?.label, '--password-command');
  assert.equal(passphraseSource({}, { passwordFile: '/plan' }, env)?.label, "the plan's passwordFile /plan");
  assert.equal(passphraseSource({}, {}, env)?.label, 'COFFER_PASSWORD_FILE /f');
  assert.equal(passphraseSource({}, {}, { COFFER_PASSWORD: 'p' })?.label, 'COFFER_PASSWORD');
  assert.equal(passphraseSource({}, {}, { COFFER_PASSWORD: '' }), undefined);
});
