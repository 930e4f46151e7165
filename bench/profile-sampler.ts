// Preloaded by bench/profile.ts (`--import`, so it runs in every worker thread too): every 100 ms each
// isolate appends its memory to COFFER_PROFILE_MEMORY_LOG, one JSON line. Synchronous appends, so the
// last samples of a worker that is terminated are not lost; the timer never keeps a thread alive.
import { appendFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';

const log = process.env.COFFER_PROFILE_MEMORY_LOG;
if (log) {
  setInterval(() => {
    const m = process.memoryUsage();
    appendFileSync(log, `${JSON.stringify({ t: Date.now(), thread: threadId, rss: m.rss, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
  }, 100).unref();
}
