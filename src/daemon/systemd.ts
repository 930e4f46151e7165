// The systemd unit `coffer daemon install` writes. No secret goes in it: each plan names its
// passphrase's passwordFile or passwordCommand in the configuration.
import { NODE_FLAGS, systemdEnvironment } from '../node-flags.ts';

export interface UnitSettings {
  /** The Node.js binary and the coffer program it runs. */
  readonly node: string;
  readonly program: string;
  readonly configFile: string;
  readonly dataDir: string;
  /** A system service (multi-user.target) rather than a user service (default.target). */
  readonly system: boolean;
}

/** systemd's quoting for ExecStart arguments: double quotes, with \ and " escaped, % doubled. */
export function quoteArgument(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

export function systemdUnit(settings: UnitSettings): string {
  const exec = [settings.node, ...NODE_FLAGS, settings.program, 'daemon', '--config', settings.configFile, '--data-dir', settings.dataDir].map(quoteArgument).join(' ');
  return `# Written by coffer daemon install. Runs the backup plans of ${settings.configFile} on their schedules.
[Unit]
Description=Coffer backup daemon
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
Environment=${systemdEnvironment()}
ExecStart=${exec}
ExecReload=/bin/kill -HUP $MAINPID
# SIGTERM: running backups checkpoint and are marked interrupted; they resume at the next start.
KillSignal=SIGTERM
TimeoutStopSec=120
Restart=on-failure
RestartSec=30
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
UMask=0077

[Install]
WantedBy=${settings.system ? 'multi-user.target' : 'default.target'}
`;
}
