// Answers membership queries from a shared IdTable view, as a chunk worker does.
import { parentPort, workerData } from 'node:worker_threads';
import { IdSetView, type IdSetShare } from '../../src/repo/id-table.ts';

const view = new IdSetView(workerData as IdSetShare);
parentPort!.on('message', (m: { share?: IdSetShare; ids: Uint8Array[] }) => {
  if (m.share) view.update(m.share);
  parentPort!.postMessage(m.ids.map((id) => view.has(id)));
});
