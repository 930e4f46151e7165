// Restore worker: decrypts, decompresses and verifies the blobs of one pack piece, and writes each to
// the files that need it, through descriptors the restore opened (threads share them). A blob that
// fails verification is reported, not written.
import { parentPort, workerData } from 'node:worker_threads';
import { decompressPayload } from '../../format/compression.ts';
import { blobId, secretKey } from '../../format/crypto.ts';
import { discard } from '../../format/discard.ts';
import { openBlob, packKey } from '../../format/pack.ts';
import { writeAt } from './file-writer.ts';
import type { JobDone, PackJob, RestoreWorkerSetup } from './restore-protocol.ts';

const setup = workerData as RestoreWorkerSetup;
const dataKey = Buffer.from(setup.dataKey);
const idKey = secretKey(setup.idKey);
const port = parentPort!;

function run(job: PackJob): JobDone {
  const key = packKey(dataKey, job.salt);
  const bytes = Buffer.from(job.bytes);
  const failed: JobDone['failed'] = [];
  const fileErrors = new Map<number, string>();
  let bytesWritten = 0;
  job.blobs.forEach((blob, index) => {
    const what = `blob ${Buffer.from(blob.id).toString('hex').slice(0, 16)} in ${job.packName}`;
    let framed: Buffer;
    let raw: Buffer;
    try {
      const sealed = bytes.subarray(blob.offset - job.base, blob.offset - job.base + blob.length);
      framed = openBlob(key, blob.offset, blob.type, blob.id, sealed, what);
      raw = decompressPayload(framed, blob.rawLength, what);
      if (!blobId(idKey, raw).equals(blob.id)) throw new Error(`${what} does not match its id (damaged)`);
    } catch (err) {
      failed.push({ blob: index, message: (err as Error).message });
      return;
    }
    for (const target of blob.targets) {
      if (fileErrors.has(target.file)) continue;
      const file = job.files[target.file]!;
      try {
        writeAt(file.fd, raw, target.position, file.sparse);
        bytesWritten += raw.length;
      } catch (err) {
        fileErrors.set(target.file, (err as Error).message);
      }
    }
    // A raw payload is a view into the decrypted one, which goes second.
    discard(raw);
    discard(framed);
  });
  return { type: 'done', job: job.job, bytesWritten, failed, fileErrors: [...fileErrors].map(([file, message]) => ({ file, message })) };
}

port.on('message', (job: PackJob) => {
  const done = run(job);
  // The piece of pack (up to 16 MiB) is freed now rather than whenever this thread collects garbage:
  // V8 counts it as external memory and lets several such dead pieces pile up before it does.
  job.bytes.transfer(0);
  port.postMessage(done);
});
