// Test-writes a destination: the server writes, reads back and deletes a probe with its own credentials
// (S3), or asks an agent to do it (a path or SFTP location, which only the agent can reach).
import { CheckCircle2, FlaskConical, XCircle } from 'lucide-react';
import { useState } from 'react';
import { errorMessage } from '../api/client.ts';
import { post } from '../api/queries.ts';
import type { Destination } from '../api/types.ts';
import { Button } from './ui/button.tsx';

interface TestResult {
  readonly ok: boolean;
  readonly ms: number;
  readonly error?: string;
}

export function TestWriteButton({ destination, agentId }: { readonly destination: Destination; readonly agentId?: string | undefined }) {
  const [result, setResult] = useState<TestResult | { failure: string } | undefined>();
  const [busy, setBusy] = useState(false);
  const agentNeeded = destination.kind === 'location';
  const run = async (): Promise<void> => {
    setBusy(true);
    setResult(undefined);
    try {
      const answer = agentNeeded ? await post<TestResult>(`/api/agents/${agentId}/test-destination`, { destinationId: destination.id }) : await post<TestResult>(`/api/destinations/${destination.id}/test`);
      setResult(answer);
    } catch (err) {
      setResult({ failure: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  const text = !result ? '' : 'failure' in result ? result.failure : result.ok ? `Wrote, read back and deleted a probe in ${result.ms} ms.` : (result.error ?? 'The test-write failed.');
  const good = result && !('failure' in result) && result.ok;
  return (
    <span className="inline-flex min-w-0 flex-wrap items-center gap-2">
      <Button size="sm" variant="secondary" busy={busy} disabled={agentNeeded && !agentId} onClick={() => void run()} aria-label={`Test-write ${destination.name}`} title={agentNeeded && !agentId ? 'Choose the agent first: it tests a path or SFTP destination itself.' : undefined}>
        <FlaskConical className="h-3.5 w-3.5" aria-hidden="true" />
        Test write
      </Button>
      <span role="status" className={`inline-flex min-w-0 items-center gap-1 text-xs ${good ? 'text-green-800' : 'text-red-700'}`}>
        {result ? good ? <CheckCircle2 className="h-3.5 w-3.5 shrink-0" aria-hidden="true" /> : <XCircle className="h-3.5 w-3.5 shrink-0" aria-hidden="true" /> : null}
        <span className="break-words">{text}</span>
      </span>
    </span>
  );
}
