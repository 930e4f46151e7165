import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultStore } from '../src/store/fault.ts';
import { RetryStore } from '../src/store/retry.ts';
import { StoreError, type ObjectInfo, type Store, type StoreErrorKind } from '../src/store/store.ts';
import { ThrottleStore, TokenBucket, parseRate, type Clock } from '../src/store/throttle.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { objectName } from './helpers/names.ts';
import { rejectsWith } from './store-conformance.ts';

/** Time that passes only when someone sleeps: sequential code measures exact virtual durations. */
function fakeClock(): Clock & { elapsed: number } {
  const clock = {
    elapsed: 0,
    now: () => clock.elapsed,
    sleep: async (ms: number) => {
      clock.elapsed += ms;
    },
  };
  return clock;
}

/** A memory store whose calls throw the queued errors first, one per call. */
class FailingStore extends MemoryStore {
  readonly failures: StoreError[] = [];
  calls = 0;

  private async next(): Promise<void> {
    this.calls++;
    const failure = this.failures.shift();
    if (failure) throw failure;
  }

  override async put(name: string, data: Uint8Array): Promise<boolean> {
    await this.next();
    return super.put(name, data);
  }

  override async get(name: string): Promise<Buffer> {
    await this.next();
    return super.get(name);
  }

  override async stat(name: string): Promise<ObjectInfo | undefined> {
    await this.next();
    return super.stat(name);
  }
}

const fail = (kind: StoreErrorKind, n = 0) => new StoreError(kind, `reading config from memory: failure ${n}`);

async function listNames(store: Store, dir: string): Promise<string[]> {
  const names = [];
  for await (const info of store.list(dir)) names.push(info.name);
  return names.sort();
}

describe('RetryStore', () => {
  const setup = (options: ConstructorParameters<typeof RetryStore>[1] = {}) => {
    const inner = new FailingStore();
    const delays: number[] = [];
    const retries: [number, number, StoreErrorKind][] = [];
    const store = new RetryStore(inner, {
      baseDelay: 100,
      random: () => 0.5,
      sleep: async (ms) => void delays.push(ms),
      onRetry: (attempt, delay, err) => retries.push([attempt, delay, err.kind]),
      ...options,
    });
    return { inner, store, delays, retries };
  };

  it('retries transient failures with growing delays', async () => {
    const { inner, store, delays, retries } = setup();
    await inner.put('config', Buffer.from('c'));
    inner.failures.push(fail('transient', 1), fail('transient', 2), fail('transient', 3));
    assert.equal((await store.get('config')).toString(), 'c');
    assert.deepEqual(delays, [50, 100, 200]);
    assert.deepEqual(retries, [
      [1, 50, 'transient'],
      [2, 100, 'transient'],
      [3, 200, 'transient'],
    ]);
  });

  for (const kind of ['denied', 'not-found', 'conflict', 'no-space', 'permanent'] as const) {
    it(`does not retry '${kind}'`, async () => {
      const { inner, store, delays } = setup();
      inner.failures.push(fail(kind));
      await assert.rejects(store.stat('config'), (err) => err instanceof StoreError && err.kind === kind);
      assert.equal(inner.calls, 1);
      assert.deepEqual(delays, []);
    });
  }

  it('does not retry errors that are not StoreErrors (bugs)', async () => {
    const inner = new MemoryStore();
    inner.stat = async () => {
      throw new TypeError('a bug');
    };
    const store = new RetryStore(inner, { sleep: async () => assert.fail('slept') });
    await assert.rejects(store.stat('config'), TypeError);
  });

  it('gives up after the last attempt with the last error', async () => {
    const { inner, store, delays } = setup({ attempts: 4 });
    inner.failures.push(...[1, 2, 3, 4, 5].map((n) => fail('transient', n)));
    await assert.rejects(store.put('config', Buffer.from('c')), (err) => err instanceof StoreError && /failure 4$/.test(err.message));
    assert.equal(inner.calls, 4);
    assert.equal(delays.length, 3);
  });

  it('keeps delays within full-jitter bounds and under maxDelay', async () => {
    const { inner, store, delays } = setup({ attempts: 10, baseDelay: 100, maxDelay: 1000, random: Math.random });
    inner.failures.push(...Array.from({ length: 9 }, (_, n) => fail('transient', n)));
    await store.stat('config');
    delays.forEach((delay, i) => {
      assert.ok(delay >= 0 && delay < Math.min(1000, 100 * 2 ** i), `delay ${i} is ${delay}`);
    });
  });

  it('gives up sooner on a store that has never answered than on one that has', async () => {
    const { inner, store, delays } = setup({ attempts: 6, firstContactAttempts: 2 });
    inner.failures.push(...[1, 2].map((n) => fail('transient', n)));
    await assert.rejects(store.stat('config'), (err) => err instanceof StoreError && /failure 2$/.test(err.message));
    assert.deepEqual(delays, [50]);
    // It answers once: from then on failures get every attempt.
    assert.equal(await store.stat('config'), undefined);
    inner.failures.push(...[4, 5, 6, 7].map((n) => fail('transient', n)));
    assert.equal(await store.stat('config'), undefined);
    assert.equal(delays.length, 1 + 4);
  });

  it('restarts a listing that failed part-way without repeating objects', async () => {
    const inner = new MemoryStore();
    for (let i = 0; i < 5; i++) await inner.put(objectName('index', i), Buffer.from([i]));
    let failOnce = true;
    const flaky: Store = Object.assign(Object.create(inner) as Store, {
      async *list(dir: string) {
        let n = 0;
        for await (const info of inner.list(dir)) {
          if (failOnce && n++ === 3) {
            failOnce = false;
            throw fail('transient');
          }
          yield info;
        }
      },
    });
    const names = [];
    for await (const info of new RetryStore(flaky, { sleep: async () => {} }).list('index')) names.push(info.name);
    assert.deepEqual(names.sort(), [0, 1, 2, 3, 4].map((i) => objectName('index', i)).sort());
  });
});

describe('parseRate', () => {
  it('reads KiB/s by default and K, M, G suffixes as powers of 1024', () => {
    assert.equal(parseRate('512'), 512 * 1024);
    assert.equal(parseRate('800k'), 800 * 1024);
    assert.equal(parseRate('5M'), 5 * 1024 ** 2);
    assert.equal(parseRate('1.5MiB/s'), 1.5 * 1024 ** 2);
    assert.equal(parseRate('2G'), 2 * 1024 ** 3);
    assert.equal(parseRate('20 KB'), 20 * 1024);
    assert.equal(parseRate('100B'), 100);
  });

  it('refuses nonsense with a one-line message', () => {
    for (const bad of ['', 'fast', '-5', '0', '5X', '5 M M', '1e6']) {
      assert.throws(() => parseRate(bad), (err) => err instanceof RangeError && err.message.includes(`'${bad}'`) && !err.message.includes('\n'), bad);
    }
  });
});

describe('ThrottleStore', () => {
  const KiB = 1024;

  it('holds uploads to the limit after the first second of burst (virtual clock)', async () => {
    const clock = fakeClock();
    const store = new ThrottleStore(new MemoryStore(), { upload: 100 * KiB, clock });
    for (let i = 0; i < 30; i++) await store.put(objectName('data', i), new Uint8Array(10 * KiB));
    // 300 KiB at 100 KiB/s, of which the first 100 KiB are the burst allowance: 2 s.
    assert.equal(clock.elapsed, 2000);
  });

  it('holds concurrent downloads to the limit (real clock)', async () => {
    const inner = new MemoryStore();
    for (let i = 0; i < 24; i++) await inner.put(objectName('data', i), new Uint8Array(64 * KiB));
    const limit = 1024 * KiB;
    const store = new ThrottleStore(inner, { download: limit });
    const started = performance.now();
    const names = Array.from({ length: 24 }, (_, i) => objectName('data', i));
    // Four workers share the one bucket.
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let i = w; i < names.length; i += 4) await store.get(names[i]!);
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    // 1536 KiB, the first 1024 KiB of it as burst: 0.5 s at the limit.
    const throughput = (24 * 64 * KiB - limit) / seconds;
    assert.ok(throughput > limit * 0.8 && throughput < limit * 1.1, `throughput ${Math.round(throughput / KiB)} KiB/s for a ${limit / KiB} KiB/s limit`);
  });

  it('limits uploads and downloads separately', async () => {
    const clock = fakeClock();
    const store = new ThrottleStore(new MemoryStore(), { upload: 10 * KiB, clock });
    await store.put(objectName('data', 'a'), new Uint8Array(50 * KiB));
    const afterUpload = clock.elapsed;
    assert.equal(afterUpload, 4000);
    await store.get(objectName('data', 'a'));
    await store.get(objectName('data', 'a'));
    assert.equal(clock.elapsed, afterUpload);
  });

  it('refuses a limit of zero', () => {
    assert.throws(() => new TokenBucket(0), RangeError);
    assert.throws(() => new TokenBucket(undefined).setRate(0), RangeError);
  });

  it('passes everything at once without a limit, and applies one set later to the next transfer (virtual clock)', async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(undefined, { clock });
    const store = new ThrottleStore(new MemoryStore(), { uploadBucket: bucket });
    await store.put(objectName('data', 'a'), new Uint8Array(1000 * KiB));
    assert.equal(clock.elapsed, 0);
    bucket.setRate(10 * KiB);
    await store.put(objectName('data', 'b'), new Uint8Array(50 * KiB));
    assert.equal(clock.elapsed, 4000, 'the first second is the burst of a new limit');
  });

  // Regression (issue 13): an agent's limit changed on the server never reached its running jobs.
  it('a limit lowered while a transfer waits holds it back, and lifted lets it go at once (real clock)', async () => {
    const bucket = new TokenBucket(1024 * KiB);
    await bucket.take(1024 * KiB); // the burst
    let done = false;
    const waiting = bucket.take(1024 * KiB).then(() => (done = true)); // a 1 s share at this rate
    bucket.setRate(10 * KiB); // now about 100 s
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(done, false, 'the lowered limit holds the transfer back');
    const lifted = performance.now();
    bucket.setRate(undefined);
    await waiting;
    assert.ok(performance.now() - lifted < 1000, `went ${Math.round(performance.now() - lifted)} ms after the limit was lifted`);
    const raised = new TokenBucket(10 * KiB);
    await raised.take(10 * KiB);
    const slow = raised.take(1000 * KiB); // 100 s at 10 KiB/s
    raised.setRate(100 * 1024 * KiB); // 10 ms at 100 MiB/s
    const started = performance.now();
    await slow;
    assert.ok(performance.now() - started < 1000, `went ${Math.round(performance.now() - started)} ms after the limit was raised`);
  });

  // Regression (issue 13): a job paused under an agent's 150 KB/s limit waited out a 4 MB pack's share
  // (about 27 s) before it could say it had paused.
  it('a stop signal ends a wait for bandwidth at once, sends nothing, and gives the share back (real clock)', async () => {
    const inner = new MemoryStore();
    const bucket = new TokenBucket(100 * KiB);
    const stop = new AbortController();
    const store = new ThrottleStore(inner, { uploadBucket: bucket, signal: stop.signal });
    await store.put(objectName('data', 'burst'), new Uint8Array(100 * KiB));
    const started = performance.now();
    const waiting = store.put(objectName('data', 'big'), new Uint8Array(3000 * KiB)); // a 30 s share
    setTimeout(() => stop.abort(), 50);
    await assert.rejects(waiting, { name: 'AbortError' });
    assert.ok(performance.now() - started < 5000, `stopped in ${Math.round(performance.now() - started)} ms`);
    assert.equal(await inner.stat(objectName('data', 'big')), undefined, 'nothing sent');
    await assert.rejects(store.put(objectName('data', 'late'), new Uint8Array(1)), { name: 'AbortError' }, 'a stopped store sends nothing more');
    // The other users of the shared bucket do not pay for bytes that never left.
    const other = new ThrottleStore(inner, { uploadBucket: bucket });
    const before = performance.now();
    await other.put(objectName('data', 'small'), new Uint8Array(10 * KiB));
    assert.ok(performance.now() - before < 1000, `the next upload waited ${Math.round(performance.now() - before)} ms`);
  });
});

describe('FaultStore', () => {
  it('fails every call while offline, and works again online', async () => {
    const store = new FaultStore(new MemoryStore());
    await store.put('config', Buffer.from('c'));
    store.goOffline();
    await rejectsWith(store.get('config'), 'transient', store, 'config');
    await rejectsWith(store.put(objectName('keys', 'k'), Buffer.from('k')), 'transient', store, objectName('keys', 'k'));
    await rejectsWith(store.stat('config'), 'transient', store, 'config');
    await rejectsWith(store.delete('config'), 'transient', store, 'config');
    await rejectsWith(listNames(store, 'keys'), 'transient', store, 'keys');
    store.goOnline();
    assert.equal((await store.get('config')).toString(), 'c');
    assert.deepEqual(await listNames(store, 'keys'), []);
  });

  it('loses the answer of a call under way when it goes offline, as a dropped connection does', async () => {
    const inner = new MemoryStore();
    const store = new FaultStore(inner, { latency: 20 });
    const putting = rejectsWith(store.put('config', Buffer.from('c')), 'transient', store, 'config');
    // The put has reached the store but its answer is lost: a retry must cope with "already there".
    inner.put = async (name, data) => {
      store.goOffline();
      return MemoryStore.prototype.put.call(inner, name, data);
    };
    await putting;
    assert.equal((await inner.stat('config'))?.size, 1);
  });

  it('fails calls at the given rate, repeatably for a seed', async () => {
    const pattern = async (seed: number): Promise<string> => {
      const store = new FaultStore(new MemoryStore(), { errorRate: 0.3, seed });
      let outcome = '';
      for (let i = 0; i < 200; i++) outcome += await store.stat('config').then(() => '.', () => 'x');
      return outcome;
    };
    const first = await pattern(42);
    assert.equal(await pattern(42), first);
    assert.notEqual(await pattern(7), first);
    const failures = [...first].filter((c) => c === 'x').length;
    assert.ok(failures > 40 && failures < 80, `${failures} of 200 failed at a rate of 0.3`);
  });

  it('fails every put after the first N, with the chosen kind', async () => {
    const store = new FaultStore(new MemoryStore(), { failAfterPuts: 3, failKind: 'no-space' });
    for (let i = 0; i < 3; i++) assert.equal(await store.put(objectName('data', i), Buffer.from([i])), true);
    await rejectsWith(store.put(objectName('data', 3), Buffer.from([3])), 'no-space', store, objectName('data', 3));
    await rejectsWith(store.put(objectName('data', 4), Buffer.from([4])), 'no-space', store, objectName('data', 4));
    assert.deepEqual((await listNames(store, 'data')).sort(), [0, 1, 2].map((i) => objectName('data', i)).sort());
  });

  it('adds latency and takes size / bandwidth per transfer', async () => {
    const clock = fakeClock();
    const store = new FaultStore(new MemoryStore(), { latency: 30, bandwidth: 1000, clock });
    await store.put(objectName('data', 'a'), new Uint8Array(500));
    assert.equal(clock.elapsed, 30 + 500);
    await store.get(objectName('data', 'a'), { offset: 0, length: 100 });
    assert.equal(clock.elapsed, 30 + 500 + 30 + 100);
  });

  it('lets RetryStore carry a backup through a flaky link', async () => {
    const inner = new MemoryStore();
    const store = new RetryStore(new FaultStore(inner, { errorRate: 0.4, seed: 3 }), { attempts: 20, sleep: async () => {} });
    for (let i = 0; i < 50; i++) await store.put(objectName('data', i), Buffer.from([i]));
    assert.equal(inner.objects.size, 50);
  });
});
