// The robustness suite's long mode: the random-action model of test/helpers/robustness.ts for many
// steps and seeds, on a local repository or on local, S3 (s3rver) and SFTP (sshd) replicas.
//   node bench/robustness.ts [--steps 40] [--seeds 3] [--writers 3] [--stores local|all] [--seed N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startRemotes } from '../test/helpers/remotes.ts';
import { runModel } from '../test/helpers/robustness.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '40' },
    seeds: { type: 'string', default: '3' },
    writers: { type: 'string', default: '3' },
    stores: { type: 'string', default: 'local' },
    seed: { type: 'string' },
  },
});
const remotes = await startRemotes();
let failed = false;
try {
  const first = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  for (let i = 0; i < Number(values.seeds); i++) {
    const seed = first + i;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-robustness-'));
    const kinds = values.stores === 'all' ? (['local', 's3', 'sftp'] as const) : (['local'] as const);
    const started = performance.now();
    try {
      const report = await runModel({
        seed,
        steps: Number(values.steps),
        writers: Number(values.writers),
        locations: kinds.map((k) => remotes.location(k, dir)),
        env: remotes.env,
        dir,
        openStore: (l) => remotes.open(l),
        log: (line) => process.stdout.write(`seed ${seed} ${line}\n`),
      });
      process.stdout.write(`seed ${seed}: ok in ${((performance.now() - started) / 1000).toFixed(0)} s ${JSON.stringify(report)}\n`);
    } catch (err) {
      failed = true;
      process.stdout.write(`seed ${seed}: FAILED: ${(err as Error).message}\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
} finally {
  await remotes.stop();
}
process.exitCode = failed ? 1 : 0;
