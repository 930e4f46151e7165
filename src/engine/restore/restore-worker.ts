// Restore worker: decrypts, decompresses and verifies the blobs of one pack piece, and writes each to
// the files that need it. A blob that fails verification is reported, not written.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { decompressPayload } from '../../format/compression.ts';
import { blobId, secretKey } from '../../format/crypto.ts';
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
  const fds = new Map<number, number>();
  const failed: JobDone['failed'] = [];
  const fileErrors = new Map<number, string>();
  let bytesWritten = 0;
  try {
    job.blobs.forEach((blob, index) => {
      const what = `blob ${Buffer.from(blob.id).toString('hex').slice(0, 16)} in ${job.packName}`;
      let raw: Buffer;
      try {
        const sealed = bytes.subarray(blob.offset - job.base, blob.offset - job.base + blob.length);
        raw = decompressPayload(openBlob(key, blob.offset, blob.type, blob.id, sealed, what), blob.rawLength, what);
        if (!blobId(idKey, raw).equals(blob.id)) throw new Error(`${what} does not match its id (damaged)`);
      } catch (err) {
        failed.push({ blob: index, message: (err as Error).message });
        return;
      }
      for (const target of blob.targets) {
        if (fileErrors.has(target.file)) continue;
        const file = job.files[target.file]!;
        try {
          let fd = fds.get(target.file);
          if (fd === undefined) {
            fd = fs.openSync(Buffer.from(file.path.buffer, file.path.byteOffset, file.path.byteLength), fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
            fds.set(target.file, fd);
          }
          writeAt(fd, raw, target.position, file.sparse);
          bytesWritten += raw.length;
        } catch (err) {
          fileErrors.set(target.file, (err as Error).message);
        }
      }
    });
  } finally {
    for (const fd of fds.values()) fs.closeSync(fd);
  }
  return { type: 'done', job: job.job, bytesWritten, failed, fileErrors: [...fileErrors].map(([file, message]) => ({ file, message })) };
}

port.on('message', (job: PackJob) => port.postMessage(run(job)));
