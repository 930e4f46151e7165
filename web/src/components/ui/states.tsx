// What a page shows while it loads, when it has nothing yet, and when something failed (with what to do).
import { AlertTriangle, RefreshCw, WifiOff } from 'lucide-react';
import type { ReactNode } from 'react';
import { ApiError, errorMessage } from '../../api/client.ts';
import { cn } from '../../lib/cn.ts';
import { Button, Spinner } from './button.tsx';

export function Loading({ label = 'Loading…', className }: { readonly label?: string; readonly className?: string }) {
  return (
    <div role="status" className={cn('flex items-center justify-center gap-2 py-10 text-sm text-slate-600', className)}>
      <Spinner className="h-4 w-4" />
      {label}
    </div>
  );
}

/** Grey blocks the size of the content to come, so the page does not jump when it arrives. */
export function Skeleton({ className }: { readonly className?: string }) {
  return <div aria-hidden="true" className={cn('animate-pulse rounded bg-slate-200/70', className)} />;
}

export function Empty({ icon, title, children, action }: { readonly icon?: ReactNode; readonly title: string; readonly children?: ReactNode; readonly action?: ReactNode }) {
  return (
    <div className="flex flex-col items-center justify-center gap-2 px-4 py-10 text-center">
      {icon ? <div className="text-slate-400" aria-hidden="true">{icon}</div> : null}
      <p className="font-medium text-slate-800">{title}</p>
      {children ? <div className="max-w-md text-sm text-slate-600">{children}</div> : null}
      {action ? <div className="mt-2">{action}</div> : null}
    </div>
  );
}

/** What to do about an error, by its kind. */
function advice(err: unknown): string | undefined {
  if (!(err instanceof ApiError)) return 'Reload the page; if it happens again, the server log has the details.';
  if (err.unreachable) return undefined; // the message says it already
  if (err.status === 404) return 'It may have been deleted, or it belongs to another account.';
  if (err.status === 403) return 'Ask an administrator if you need this.';
  if (err.status >= 500) return 'The server log has the details.';
  return undefined;
}

export function ErrorBox({ error, retry, className, title = 'Something went wrong' }: { readonly error: unknown; readonly retry?: () => void; readonly className?: string; readonly title?: string }) {
  const down = error instanceof ApiError && error.unreachable;
  const tip = advice(error);
  return (
    <div role="alert" className={cn('flex items-start gap-3 rounded-md border border-red-200 bg-red-50 p-3 text-sm text-red-900', className)}>
      {down ? <WifiOff className="mt-0.5 h-4 w-4 shrink-0" aria-hidden="true" /> : <AlertTriangle className="mt-0.5 h-4 w-4 shrink-0" aria-hidden="true" />}
      <div className="min-w-0 flex-1">
        <p className="font-medium">{down ? 'No connection to the server' : title}</p>
        <p className="break-words">{errorMessage(error)}</p>
        {tip ? <p className="mt-1 text-red-800">{tip}</p> : null}
      </div>
      {retry ? (
        <Button size="sm" variant="secondary" onClick={retry}>
          <RefreshCw className="h-3.5 w-3.5" aria-hidden="true" />
          Try again
        </Button>
      ) : null}
    </div>
  );
}

/** Renders a query's loading and error states, and its data once there is some. */
export function QueryState<T>({ query, children, loading }: { readonly query: { data: T | undefined; error: unknown; isPending: boolean; refetch: () => unknown }; readonly children: (data: T) => ReactNode; readonly loading?: ReactNode }) {
  if (query.data !== undefined) return <>{children(query.data)}</>;
  if (query.error) return <ErrorBox error={query.error} retry={() => void query.refetch()} />;
  return <>{loading ?? <Loading />}</>;
}
