// A small mutation fuzzer for the decoders: random inputs and mutations of valid encodings (bit flips,
// interesting bytes, huge varints, insertions, deletions, truncations, splices, and for JSON formats
// values of the wrong type or absurd size). A decoder may only throw one of the typed errors Coffer
// reports as a one-line message; anything else, or an input that takes more than a second, fails.
// `npm test` runs each target for a fraction of a second, `npm run bench -- fuzz` for minutes.
import { FormatError } from '../../src/format/bytes.ts';
import { UnsupportedVersionError } from '../../src/format/config.ts';
import { AuthenticationError } from '../../src/format/crypto.ts';
import { RepositoryError } from '../../src/repo/errors.ts';
import { seededRandom } from '../../src/store/fault.ts';
import { StoreError } from '../../src/store/store.ts';

export interface FuzzTarget {
  readonly name: string;
  /** Valid inputs, mutated into invalid ones. */
  readonly seeds: readonly Buffer[];
  /** The decoder under test. */
  readonly run: (input: Buffer) => unknown;
  /** Also mutate the seeds as JSON values. */
  readonly json?: boolean;
}

export interface FuzzFailure {
  readonly target: string;
  readonly input: Buffer;
  readonly problem: string;
}

export interface FuzzResult {
  readonly iterations: number;
  readonly failures: FuzzFailure[];
}

const TYPED = [FormatError, AuthenticationError, UnsupportedVersionError, StoreError, RepositoryError];
const SLOW_MS = 1000;
const INTERESTING = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0x2f, 0x2e];

/** A varint far bigger than any real count or length. */
const HUGE_VARINTS = [Buffer.from('ffffffffffffffff7f', 'hex'), Buffer.from('ffffffff0f', 'hex'), Buffer.from('80808080808080808001', 'hex')];

/** Values that break naive JSON readers: wrong types, absurd sizes, deep nesting. */
function absurdValue(random: () => number): unknown {
  const deep = (depth: number): unknown => (depth === 0 ? 0 : [deep(depth - 1)]);
  const choices: (() => unknown)[] = [
    () => null,
    () => true,
    () => -1,
    () => 2e9,
    () => 2 ** 53 + 2,
    () => 1e308,
    () => 0.5,
    () => '',
    () => 'x'.repeat(1 + Math.floor(random() * 5000)),
    () => '\u001b[2J\u0000',
    () => [],
    () => ['a', 1, null],
    () => ({}),
    () => ({ length: 2e9 }),
    () => deep(1 + Math.floor(random() * 2000)),
  ];
  return choices[Math.floor(random() * choices.length)]!();
}

function mutateJson(seed: Buffer, random: () => number): Buffer | undefined {
  let value: unknown;
  try {
    value = JSON.parse(seed.toString());
  } catch {
    return undefined;
  }
  // A random object somewhere in the value, and one of its keys.
  const objects: Record<string, unknown>[] = [];
  const collect = (v: unknown): void => {
    if (typeof v === 'object' && v !== null) {
      objects.push(v as Record<string, unknown>);
      for (const child of Object.values(v)) collect(child);
    }
  };
  collect(value);
  const target = objects[Math.floor(random() * objects.length)];
  if (!target) return Buffer.from(JSON.stringify(absurdValue(random)));
  const keys = Object.keys(target);
  const key = keys[Math.floor(random() * keys.length)] ?? 'extra';
  if (random() < 0.2) delete target[key];
  else target[key] = absurdValue(random);
  return Buffer.from(JSON.stringify(value));
}

function mutateBytes(input: Buffer, other: Buffer, random: () => number): Buffer {
  const pick = (n: number): number => Math.floor(random() * n);
  const at = pick(input.length + 1);
  switch (pick(9)) {
    case 0: {
      const out = Buffer.from(input);
      for (let i = 1 + pick(4); i > 0 && out.length > 0; i--) out[pick(out.length)]! ^= 1 << pick(8);
      return out;
    }
    case 1: {
      const out = Buffer.from(input);
      if (out.length > 0) out[pick(out.length)] = INTERESTING[pick(INTERESTING.length)]!;
      return out;
    }
    case 2:
      return Buffer.concat([input.subarray(0, at), HUGE_VARINTS[pick(HUGE_VARINTS.length)]!, input.subarray(at)]);
    case 3:
      return Buffer.concat([input.subarray(0, at), randomBytes(random, 1 + pick(16)), input.subarray(at)]);
    case 4:
      return Buffer.concat([input.subarray(0, at), input.subarray(at + 1 + pick(16))]);
    case 5:
      return input.subarray(0, at);
    case 6: {
      const from = pick(input.length + 1);
      return Buffer.concat([input.subarray(0, at), input.subarray(from, from + pick(64)), input.subarray(at)]);
    }
    case 7:
      return Buffer.concat([input.subarray(0, at), other.subarray(pick(other.length + 1))]);
    default:
      return randomBytes(random, pick(2 * input.length + 2));
  }
}

function randomBytes(random: () => number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** What is wrong with how `target` takes `input`, if anything. */
function attempt(target: FuzzTarget, input: Buffer, again = true): string | undefined {
  const started = performance.now();
  try {
    target.run(input);
  } catch (err) {
    if (!TYPED.some((type) => err instanceof type)) return `threw ${(err as Error)?.name}: ${(err as Error)?.message}`;
    if ((err as Error).message.includes('\n')) return `a message of several lines: ${(err as Error).message}`;
  }
  const took = performance.now() - started;
  // A pause of the whole process (garbage collection, a busy machine) is not the input's fault: slow twice is.
  if (took > SLOW_MS) return again ? attempt(target, input, false) : `took ${Math.round(took)} ms`;
  return undefined;
}

/** Feeds `target` mutated inputs for `ms` milliseconds, starting from `seed`. */
export function fuzz(target: FuzzTarget, ms: number, seed: number): FuzzResult {
  const random = seededRandom(seed);
  const failures: FuzzFailure[] = [];
  const deadline = performance.now() + ms;
  let iterations = 0;
  while (performance.now() < deadline && failures.length < 5) {
    const base = target.seeds[Math.floor(random() * target.seeds.length)]!;
    const other = target.seeds[Math.floor(random() * target.seeds.length)]!;
    let input = (target.json && random() < 0.5 ? mutateJson(base, random) : undefined) ?? mutateBytes(base, other, random);
    // Mutations stack up now and then: what one fixes another breaks.
    while (random() < 0.3) input = mutateBytes(input, other, random);
    iterations++;
    const problem = attempt(target, input);
    if (problem) failures.push({ target: target.name, input, problem });
  }
  return { iterations, failures };
}
