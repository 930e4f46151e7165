// How the daemon opens a plan's stores: the plan's bandwidth limits, CA certificates and TLS choice, and
// the storage credentials its credentialsCommand prints, asked afresh for each run (short-lived
// credentials expire between runs). The same settings reach the worker processes of a plan with
// `workers: N`, so they open the stores exactly as the run itself does.
import type { PlanConfig } from '../config/config-file.ts';
import type { StoreSettings } from '../store/configured-store.ts';
import { credentialsFromCommand } from './credentials.ts';

export async function planStoreSettings(plan: PlanConfig, signal?: AbortSignal): Promise<StoreSettings> {
  const command = plan.credentialsCommand;
  const env = command ? { ...process.env, ...(await credentialsFromCommand(command, signal ? { signal } : {})) } : undefined;
  return { limitUpload: plan.limitUpload, limitDownload: plan.limitDownload, cacert: plan.cacert ?? [], insecureTls: plan.insecureTls ?? false, ...(env ? { env } : {}) };
}
