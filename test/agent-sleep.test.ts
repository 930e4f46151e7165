// The agent's waits leave no listener behind: an idle long-polling agent waits twice a second for days,
// and each wait that left one on the stop signal or the outbox (as before) piled them up (Node warned of
// a leak after 11).
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { sleep } from '../src/agent/agent.ts';

test('a wait ended by its time, by a wake-up or by the stop signal removes its listeners', async () => {
  const stop = new AbortController();
  const outbox = new EventTarget();
  const wake = { target: outbox, event: 'outbox' };
  for (let i = 0; i < 20; i++) await sleep(1, stop.signal, wake);
  const woken = sleep(60_000, stop.signal, wake);
  outbox.dispatchEvent(new Event('outbox'));
  await woken;
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
  assert.equal(getEventListeners(outbox, 'outbox').length, 0);
  const stopped = sleep(60_000, stop.signal, wake);
  stop.abort();
  await stopped;
  assert.equal(getEventListeners(outbox, 'outbox').length, 0);
});
