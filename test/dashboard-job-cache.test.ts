// The dashboard keeps each job in its query cache, written by the live events and by the answers to its
// own requests. A pause is answered with the job as it was when asked (running), and that answer can
// arrive after the event of the agent's "paused" (the agent pauses in place, at once): the older state
// must not overwrite the newer one, or the page shows Pause for a paused job until it is reloaded.
import assert from 'node:assert/strict';
import { test } from 'node:test';

// Loaded by name: the dashboard's code and React's types are checked with the dashboard's own settings
// (web/tsconfig.json), not with the server's.
type Job = { readonly id: string; readonly status: string; readonly updatedAt: number };
interface Cache {
  setQueryData<T>(key: readonly unknown[], value: T): void;
  getQueryData<T>(key: readonly unknown[]): T | undefined;
}
const { QueryClient } = (await import('@tanstack/react-query' as string)) as { QueryClient: new () => Cache };
const { keys, storeJob } = (await import(new URL('../web/src/api/queries.ts', import.meta.url).href)) as {
  keys: { job(id: string): readonly unknown[]; tasks: readonly unknown[] };
  storeJob(client: Cache, job: Job): void;
};

test("a job's older state never overwrites a newer one in the dashboard's cache", () => {
  const client = new QueryClient();
  const running: Job = { id: 'j1', status: 'running', updatedAt: 1000 };
  const paused: Job = { ...running, status: 'paused', updatedAt: 1200 };
  client.setQueryData(keys.job('j1'), { ...running });
  client.setQueryData(keys.tasks, [running]);

  storeJob(client, paused); // the agent's "paused", through the event stream
  storeJob(client, running); // the pause request's answer, arriving late
  assert.equal(client.getQueryData<Job>(keys.job('j1'))!.status, 'paused');
  assert.equal(client.getQueryData<Job[]>(keys.tasks)![0]!.status, 'paused');

  storeJob(client, { ...paused, status: 'running', updatedAt: 1500 }); // resumed later: newer, taken
  assert.equal(client.getQueryData<Job>(keys.job('j1'))!.status, 'running');
  assert.equal(client.getQueryData<Job[]>(keys.tasks)![0]!.status, 'running');
});
