// `npm run bench -- fuzz [--seconds N] [--seed S]`: the decoder fuzzing of test/fuzz.test.ts, for N
// seconds per decoder (default 60) instead of a fraction of one. Failing inputs are written to
// .bench-work/fuzz-failures/ to be replayed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fuzz } from '../test/helpers/fuzz.ts';
import { FUZZ_TARGETS } from '../test/helpers/fuzz-targets.ts';

export function runFuzz(args: string[], work: string): number {
  const { values } = parseArgs({ args, options: { seconds: { type: 'string', default: '60' }, seed: { type: 'string' } } });
  const seconds = Number(values.seconds);
  const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
  const dir = join(work, 'fuzz-failures');
  let failed = 0;
  process.stdout.write(`fuzzing ${FUZZ_TARGETS.length} decoders for ${seconds} s each, seed ${seed}\n`);
  for (const target of FUZZ_TARGETS) {
    const { iterations, failures } = fuzz(target, seconds * 1000, seed);
    process.stdout.write(`${target.name.padEnd(20)} ${String(iterations).padStart(10)} inputs  ${(iterations / seconds).toFixed(0).padStart(8)}/s  ${failures.length ? `${failures.length} FAILED` : 'ok'}\n`);
    for (const [i, f] of failures.entries()) {
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${target.name.replace(/\W+/g, '-')}-${seed}-${i}.bin`);
      writeFileSync(file, f.input);
      process.stdout.write(`  ${f.problem} (input in ${file})\n`);
    }
    failed += failures.length;
  }
  return failed === 0 ? 0 : 1;
}
