// Fuzzing every decoder for a bounded time (COFFER_FUZZ_MS per target, default 250): only typed,
// one-line errors, and no input slower than a second. `npm run bench -- fuzz` runs the same for longer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzz } from './helpers/fuzz.ts';
import { FUZZ_TARGETS } from './helpers/fuzz-targets.ts';

const MS = Number(process.env.COFFER_FUZZ_MS ?? 250);
// A new seed each run covers new ground; a failure prints it so the run can be repeated.
const SEED = Number(process.env.COFFER_FUZZ_SEED ?? Date.now() % 2 ** 31);

for (const target of FUZZ_TARGETS) {
  test(`fuzz: ${target.name}`, (t) => {
    const { iterations, failures } = fuzz(target, MS, SEED);
    t.diagnostic(`${iterations} inputs, seed ${SEED}`);
    assert.deepEqual(
      failures.map((f) => `${f.problem} (input ${f.input.toString('hex').slice(0, 200)}, COFFER_FUZZ_SEED=${SEED})`),
      [],
    );
  });
}
