// The server's periodic checks: a round asked for while another is under way runs after it, because
// the round under way may have read the state before the caller changed it (a paused job whose
// scaled-out run must end).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Monitor } from '../src/server/monitor.ts';
import { startTestServer } from './helpers/server.ts';

test('a tick asked for during a round runs a new round after it; several such asks share that one round', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  let rounds = 0;
  let release: () => void = () => {};
  const monitor = new Monitor(server.ctx, {
    checks: [
      async () => {
        rounds++;
        if (rounds === 1) await new Promise<void>((resolve) => (release = resolve));
      },
    ],
  });
  const first = monitor.tick();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(rounds, 1, 'the first round is under way');
  const second = monitor.tick();
  const third = monitor.tick();
  assert.equal(second, third, 'asks during one round share the round after it');
  release();
  await first;
  await second;
  assert.equal(rounds, 2, 'a round started after the second ask');
  await monitor.tick();
  assert.equal(rounds, 3);
});
