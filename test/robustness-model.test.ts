// The random-action model (test/helpers/robustness.ts), short: three writer processes at a time for a
// few steps on a local repository, and two on local and S3 replicas. The seed is printed; set
// COFFER_ROBUSTNESS_SEED to replay a failure. bench/robustness.ts runs it long.
import { after, before, test } from 'node:test';
import { HEAVY, tempDir } from './helpers/cli.ts';
import { startRemotes, type Remotes } from './helpers/remotes.ts';
import { runModel } from './helpers/robustness.ts';

let remotes: Remotes;
before(async () => {
  remotes = await startRemotes();
});
after(() => remotes?.stop());

const seed = Number(process.env.COFFER_ROBUSTNESS_SEED ?? Math.floor(Math.random() * 2 ** 31));

test(`random backups, forgets, prunes, restores and checks by three processes at once keep every invariant (seed ${seed})`, { timeout: 300_000 }, async (t) => {
  const dir = tempDir(t);
  const report = await runModel({ seed, steps: 4, writers: 3, locations: [remotes.location('local', dir)], env: remotes.env, dir, openStore: (l) => remotes.open(l), log: (line) => t.diagnostic(line) });
  t.diagnostic(JSON.stringify(report));
});

test(`the same on local and S3 replicas with two processes at once (seed ${seed + 1})`, { timeout: 300_000, ...HEAVY }, async (t) => {
  const dir = tempDir(t);
  const report = await runModel({ seed: seed + 1, steps: 2, writers: 2, locations: [remotes.location('local', dir), remotes.location('s3', dir)], env: remotes.env, dir, openStore: (l) => remotes.open(l), log: (line) => t.diagnostic(line) });
  t.diagnostic(JSON.stringify(report));
});
