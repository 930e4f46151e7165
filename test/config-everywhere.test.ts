// The configuration file serves every command: --plan on each repository command, COFFER_REPOSITORY_FILE,
// ~ and $VARS, paths relative to the file, doctor over every plan, and setup that keeps comments.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { expandVariables } from '../src/config/expand.ts';
import { coffer, cofferAsync, jsonLines, ok, tempDir } from './helpers/cli.ts';

const NO_SOURCE = { COFFER_PASSWORD: undefined, COFFER_REPO: undefined };

/** A configuration directory with a passphrase file, a source and an initialised repository, all relative. */
function configured(t: import('node:test').TestContext): { dir: string; env: Record<string, string | undefined> } {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'passphrase'), 'plan secret\n');
  fs.mkdirSync(path.join(dir, 'photos'));
  fs.writeFileSync(path.join(dir, 'photos', 'cat.jpg'), 'meow');
  fs.writeFileSync(path.join(dir, 'photos', 'cat.tmp'), 'scratch');
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      '# my plans',
      'plans:',
      '  photos:',
      '    repos: [repo, "${BACKUP_ROOT}/second"]',
      '    paths: [photos]',
      '    exclude: ["*.tmp"]',
      '    passwordFile: passphrase',
      '',
    ].join('\n'),
  );
  const env = { ...NO_SOURCE, COFFER_CONFIG: config, BACKUP_ROOT: path.join(dir, 'elsewhere'), COFFER_DATA_DIR: path.join(dir, 'data') };
  ok(['init', '--plan', 'photos'], { env, cwd: '/' });
  return { dir, env };
}

test('--plan gives every repository command its repositories and passphrase; paths are relative to the config file', (t) => {
  const { dir, env } = configured(t);
  assert.ok(fs.existsSync(path.join(dir, 'repo', 'config')), 'repo is relative to the configuration file');
  assert.ok(fs.existsSync(path.join(dir, 'elsewhere', 'second', 'config')), '${BACKUP_ROOT} is expanded');
  ok(['backup', '--plan', 'photos'], { env, cwd: '/' });
  const snaps = jsonLines<{ paths: string[] }>(ok(['snapshots', '--plan', 'photos', '--json'], { env, cwd: '/' }).stdout);
  assert.deepEqual(snaps.map((s) => s.paths), [[path.join(dir, 'photos')]]);
  assert.deepEqual(
    jsonLines<{ path: string }>(ok(['ls', '--plan', 'photos', `latest:${path.join(dir, 'photos')}`, '--json'], { env }).stdout).map((n) => n.path),
    [path.join(dir, 'photos', 'cat.jpg')],
    'the plan\'s exclude left out cat.tmp',
  );
  ok(['restore', '--plan', 'photos', 'latest', '--target', path.join(dir, 'back')], { env });
  assert.equal(fs.readFileSync(path.join(dir, 'back', dir, 'photos', 'cat.jpg'), 'utf8'), 'meow', 'restored under its full path');
  assert.match(ok(['check', '--plan', 'photos', '--read-data'], { env }).stdout, /no errors were found/);
  assert.equal(jsonLines(ok(['key', 'list', '--plan', 'photos', '--json'], { env }).stdout).length, 1);
  // --repo on the command line picks one of them, with the plan's passphrase.
  ok(['snapshots', '--plan', 'photos', '--repo', path.join(dir, 'elsewhere', 'second')], { env });
  const unknown = coffer(['snapshots', '--plan', 'phots'], { env });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^coffer: no plan "phots" in .*config\.yaml \(plans: photos\)\n$/);
});

test('sync --plan brings the plan\'s other repositories up to date from its first', (t) => {
  const { dir, env } = configured(t);
  const [first, second] = [path.join(dir, 'repo'), path.join(dir, 'elsewhere', 'second')];
  ok(['backup', '--plan', 'photos', '--repo', first], { env, cwd: '/' });
  assert.equal(jsonLines(ok(['snapshots', '--plan', 'photos', '--repo', second, '--json'], { env }).stdout).length, 0);
  assert.match(ok(['sync', '--plan', 'photos'], { env, cwd: '/' }).stdout, new RegExp(`^${second}: copied [1-9]\\d* objects`, 'm'));
  assert.equal(jsonLines(ok(['snapshots', '--plan', 'photos', '--repo', second, '--json'], { env }).stdout).length, 1);
  assert.match(ok(['sync', '--plan', 'photos', '--from', second], { env }).stdout, /already up to date/);
  const nothing = coffer(['sync'], { env });
  assert.equal(nothing.code, 1);
  assert.match(nothing.stderr, /^coffer: give --from LOCATION and at least one --to LOCATION, or --plan NAME/);
});

test('COFFER_PASSWORD_FILE, COFFER_PASSWORD_COMMAND and COFFER_REPOSITORY_FILE', (t) => {
  const { dir, env } = configured(t);
  const repoFile = path.join(dir, 'repository');
  fs.writeFileSync(repoFile, `# where the backups go\n${path.join(dir, 'repo')}\n\n`);
  const plain = { ...env, COFFER_CONFIG: undefined, COFFER_REPOSITORY_FILE: repoFile };
  ok(['snapshots'], { env: { ...plain, COFFER_PASSWORD_FILE: path.join(dir, 'passphrase') } });
  ok(['snapshots'], { env: { ...plain, COFFER_PASSWORD_COMMAND: `cat ${path.join(dir, 'passphrase')}` } });
  const both = coffer(['snapshots'], { env: { ...plain, COFFER_REPO: path.join(dir, 'repo'), COFFER_PASSWORD_FILE: path.join(dir, 'passphrase') } });
  assert.match(both.stderr, /^coffer: COFFER_REPO and COFFER_REPOSITORY_FILE are both set; unset one\n$/);
  const missing = coffer(['snapshots'], { env: { ...plain, COFFER_REPOSITORY_FILE: path.join(dir, 'nope') } });
  assert.match(missing.stderr, /^coffer: cannot read COFFER_REPOSITORY_FILE .*nope: ENOENT\n$/);
});

test('~ and $VARS in the configuration and in exclude files; an unset variable is named', (t) => {
  const { dir, env } = configured(t);
  const home = path.join(dir, 'home');
  fs.mkdirSync(path.join(home, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(home, 'docs', 'cv.txt'), 'cv');
  fs.writeFileSync(path.join(home, 'docs', 'draft.txt'), 'draft');
  fs.writeFileSync(path.join(dir, 'excludes'), '# drafts\n$SKIP\n~/docs/none\n');
  const config = env.COFFER_CONFIG!;
  fs.appendFileSync(config, '  docs:\n    repos: [repo]\n    paths: [~/docs]\n    passwordFile: $SECRET_DIR/passphrase\n');
  const withHome = { ...env, HOME: home, SECRET_DIR: dir, SKIP: 'draft.*' };
  ok(['backup', '--plan', 'docs', '--exclude-file', path.join(dir, 'excludes')], { env: withHome });
  const paths = jsonLines<{ path: string }>(ok(['ls', '--plan', 'docs', `latest:${path.join(home, 'docs')}`, '--json', '--path', path.join(home, 'docs')], { env: withHome }).stdout).map((n) => n.path);
  assert.deepEqual(paths, [path.join(home, 'docs', 'cv.txt')]);

  const unset = coffer(['snapshots', '--plan', 'docs'], { env: { ...withHome, SECRET_DIR: undefined } });
  assert.equal(unset.code, 1);
  assert.match(unset.stderr, /^coffer: .*config\.yaml: plans\.docs\.passwordFile: \$SECRET_DIR is not set \(write \$\$ for a literal \$\)\n$/);
  const badExclude = coffer(['backup', '--plan', 'docs', '--exclude-file', path.join(dir, 'excludes')], { env: { ...withHome, SKIP: undefined } });
  assert.match(badExclude.stderr, /^coffer: --exclude-file .*excludes: \$SKIP is not set in "\$SKIP"/);
});

test('expandVariables: ~, $NAME, ${NAME}, $$ and a lone $', () => {
  const env = { A: 'x', LONG_NAME: 'y' };
  assert.equal(expandVariables('~', env, '/home/ann'), '/home/ann');
  assert.equal(expandVariables('~/a/$A/${LONG_NAME}z', env, '/home/ann'), '/home/ann/a/x/yz');
  assert.equal(expandVariables('a~/b', env, '/h'), 'a~/b');
  assert.equal(expandVariables('cost: $$5, 100$', env, '/h'), 'cost: $5, 100$');
  assert.throws(() => expandVariables('$NOPE/x', env, '/h'), /\$NOPE is not set/);
});

test('doctor without --plan checks every plan of the configuration', (t) => {
  const { dir, env } = configured(t);
  fs.appendFileSync(env.COFFER_CONFIG!, '  broken:\n    repos: [/proc/nope]\n    paths: [photos]\n    passwordFile: passphrase\n');
  const r = coffer(['doctor'], { env, timeoutMs: 60_000 });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^ok {4}plan photos: repository ${path.join(dir, 'repo')}: repository [0-9a-f]{8}`, 'm'));
  assert.match(r.stdout, /^ok {4}plan photos: passphrase: from the plan's passwordFile .*; it opens the repository$/m);
  assert.match(r.stdout, /^FAIL {2}plan broken: write \/proc\/nope: test-write failed: .*cannot create directory \/proc\/nope/m);
});

test('Ctrl-C at a setup question is one line and exit 130, and the configuration is not written', async (t) => {
  const dir = tempDir(t);
  const config = path.join(dir, 'config.yaml');
  const run = cofferAsync(['setup', '--config', config]);
  t.after(() => run.child.kill('SIGKILL'));
  for (let i = 0; i < 1200 && !run.output().stdout.includes('plan name'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130, r.stderr);
  assert.equal(r.stderr, 'coffer: setup cancelled; the plan was not saved\n');
  assert.equal(fs.existsSync(config), false);
});

test('bug 7: setup adds a plan and keeps the comments, order and other plans of an existing configuration', (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'photos'));
  fs.writeFileSync(path.join(dir, 'photos', 'cat.jpg'), 'meow');
  const config = path.join(dir, 'config.yaml');
  const before = [
    "# Ann's backups, edited by hand",
    'retries: {max: 5} # patient',
    'plans:',
    '  # the old disk, kept for now',
    '  photos:',
    `    repos: [${path.join(dir, 'old-disk')}]`,
    '    paths: [photos] # next to this file',
    '',
  ].join('\n');
  fs.writeFileSync(config, before);
  const answers = ['docs', path.join(dir, 'photos'), '', path.join(dir, 'repo'), '', '1', 'y'].join('\n');
  const r = coffer(['setup'], { env: { COFFER_CONFIG: config }, input: answers });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const after = fs.readFileSync(config, 'utf8');
  assert.ok(after.startsWith(before.trimEnd()), `the file is kept as it was, the new plan after it:\n${after}`);
  for (const kept of ['# the old disk, kept for now', '# next to this file', '[photos]']) assert.ok(after.includes(kept), `${kept} kept in:\n${after}`);
  assert.ok(after.indexOf('photos:') < after.indexOf('docs:'), 'the new plan comes after the existing one');
  assert.match(after, new RegExp(`docs:\\n {4}repos:\\n {6}- ${path.join(dir, 'repo')}\\n`));
});
