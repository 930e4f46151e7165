// A separate coffer process for the acquire race: opens the job database, says "ready", tries to
// acquire the plan when told "go", prints the outcome as JSON, and holds on to its run (staying alive)
// until its stdin closes.
import readline from 'node:readline';
import { JobStore } from '../../src/jobs/job-store.ts';

const [dataDir, planId] = process.argv.slice(2);
const store = JobStore.open(dataDir!);
const lines = readline.createInterface({ input: process.stdin });
console.log('ready');
for await (const line of lines) {
  if (line !== 'go') continue;
  try {
    console.log(JSON.stringify({ won: true, jobId: store.acquirePlanRun(Number(planId)).jobId }));
  } catch (err) {
    console.log(JSON.stringify({ won: false, name: (err as Error).name, message: (err as Error).message }));
  }
}
store.close();
