import net from 'node:net';
import { Command } from 'commander';
import { SnapshotFs } from '../../engine/snapshot-fs.ts';
import { WebDavServer } from '../../serve/webdav.ts';
import { usesEnvironment } from '../environment-help.ts';
import { UsageError } from '../exit-codes.ts';
import { printJson, printLine, printWarning } from '../output.ts';
import { addRepoOptions, openRepository, type RepoOptions } from '../repo-options.ts';

interface ServeOptions extends RepoOptions {
  readonly addr: string;
}

/** 'HOST:PORT', '[::1]:PORT', or ':PORT' and 'PORT' (loopback). */
export function parseAddr(text: string): { host: string; port: number } {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--addr takes HOST:PORT (e.g. 127.0.0.1:8080), not "${text}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

function webdavCommand(): Command {
  const command = addRepoOptions(new Command('webdav').description('serve every snapshot read-only over WebDAV (Finder, Explorer, davfs2, rclone) until Ctrl-C'));
  return usesEnvironment(command, ['COFFER_WEBDAV_PASSWORD'])
    .option('--addr <host:port>', 'where to listen; another address than loopback needs COFFER_WEBDAV_PASSWORD', '127.0.0.1:8080')
    .action(async (options: ServeOptions) => {
      const { host, port } = parseAddr(options.addr);
      const password = process.env.COFFER_WEBDAV_PASSWORD || undefined;
      if (!isLoopback(host) && password === undefined) {
        throw new UsageError(`refusing to serve the snapshots on ${host} without a password: set COFFER_WEBDAV_PASSWORD (clients log in with any user name and it), or listen on 127.0.0.1`);
      }
      const repo = await openRepository(options);
      const server = new WebDavServer(new SnapshotFs(repo), {
        ...(password ? { password } : {}),
        onError: (err, url) => printWarning(`${decodeURI(url)}: ${err.message}`),
      });
      try {
        const address = await server.listen(host, port).catch((err: NodeJS.ErrnoException) => {
          throw new UsageError(err.code === 'EADDRINUSE' ? `${options.addr} is in use: pick another port` : `cannot listen on ${options.addr}: ${err.message}`);
        });
        const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        if (options.json) printJson({ type: 'listening', url: `http://${shownHost}:${address.port}/` });
        else printLine(`serving the snapshots read-only at http://${shownHost}:${address.port}/${password ? ' (password required)' : ''}; Ctrl-C to stop`);
        if (!isLoopback(host)) printWarning('plain HTTP: the password and the files cross the network unencrypted; put a TLS proxy in front');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
      } finally {
        await server.close();
        await repo.close();
      }
    });
}

export function serveCommand(): Command {
  return new Command('serve').description('serve the repository to other programs').addCommand(webdavCommand());
}
