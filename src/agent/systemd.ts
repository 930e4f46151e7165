// The systemd unit `coffer agent install` writes: the agent restarts when it exits, the key and the
// passphrase are read from files (never on the command line), and the machine's files stay readable.
import { NODE_FLAGS, systemdEnvironment } from '../node-flags.ts';

export interface UnitOptions {
  readonly server: string;
  readonly keyFile: string;
  readonly passwordFile: string;
  readonly capacity: number;
  readonly labels?: readonly string[];
  readonly user: string;
  /** The Node 24 binary and the coffer entry point to run. */
  readonly node: string;
  readonly coffer: string;
  readonly home?: string;
}

/** systemd splits ExecStart on spaces and expands % and $: each argument is quoted and escaped. */
function arg(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`;
}

export function systemdUnit(o: UnitOptions): string {
  const exec = [o.node, ...NODE_FLAGS, o.coffer, 'agent', '--server', o.server, '--key-file', o.keyFile, '--password-file', o.passwordFile, '--capacity', String(o.capacity), ...(o.labels ?? []).flatMap((l) => ['--label', l])].map(arg).join(' ');
  return `[Unit]
Description=Coffer backup agent (${o.server.replace(/[%$\n]/g, '')})
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=${o.user}
Environment=${systemdEnvironment()}
ExecStart=${exec}
Restart=always
RestartSec=10
# SIGTERM: running jobs stop cleanly and resume when the agent is back.
KillSignal=SIGTERM
TimeoutStopSec=60
${o.home ? `Environment=HOME=${arg(o.home)}\n` : ''}
[Install]
WantedBy=multi-user.target
`;
}
