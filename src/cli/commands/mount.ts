import fs from 'node:fs';
import { Command } from 'commander';
import { SnapshotFs } from '../../engine/snapshot-fs.ts';
import { FuseUnavailableError, loadFuse, mountSnapshots } from '../../serve/fuse-mount.ts';
import { UsageError } from '../exit-codes.ts';
import { printJson, printLine, printWarning } from '../output.ts';
import { addRepoOptions, openRepository, type RepoOptions } from '../repo-options.ts';

const WEBDAV_HINT = 'browse the snapshots with coffer serve webdav instead (Finder, Explorer, davfs2 and rclone mount it)';

/** Why FUSE cannot be used here, or undefined when /dev/fuse is there and can be opened. */
function fuseDeviceProblem(): string | undefined {
  if (process.platform === 'darwin') return undefined;
  try {
    fs.closeSync(fs.openSync('/dev/fuse', 'r+'));
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'there is no /dev/fuse on this machine (no FUSE kernel module, or a container without it)' : `/dev/fuse cannot be opened (${code})`;
  }
}

export function mountCommand(): Command {
  return addRepoOptions(new Command('mount').description('mount every snapshot read-only at DIR through FUSE, until Ctrl-C (Linux, macOS)'))
    .argument('<dir>', 'an empty directory to mount on')
    .action(async (dir: string, options: RepoOptions) => {
      const stat = fs.statSync(dir, { throwIfNoEntry: false });
      if (!stat?.isDirectory()) throw new UsageError(`${dir} is not a directory: create it first (mkdir ${dir})`);
      const device = fuseDeviceProblem();
      if (device) throw new UsageError(`FUSE is not available: ${device}; ${WEBDAV_HINT}`);
      let Fuse;
      try {
        Fuse = loadFuse();
      } catch (err) {
        if (err instanceof FuseUnavailableError) throw new UsageError(`FUSE is not available: ${err.message}; ${WEBDAV_HINT}`);
        throw err;
      }
      const repo = await openRepository(options);
      try {
        const mounted = await mountSnapshots(Fuse, new SnapshotFs(repo), dir, (err, p) => printWarning(`${p}: ${err.message}`)).catch((err: Error) => {
          throw new UsageError(`cannot mount on ${dir}: ${err.message}; ${WEBDAV_HINT}`);
        });
        if (options.json) printJson({ type: 'mounted', dir });
        else printLine(`snapshots mounted read-only at ${dir}; Ctrl-C to unmount`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await mounted.unmount();
      } finally {
        await repo.close();
      }
    });
}
