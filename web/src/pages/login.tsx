// Sign-in, and sign-up: the very first account (which becomes the administrator), an invitation, or open
// sign-up when the administrator allows it. Field problems are shown beside the field before anything
// is sent; what the server refuses is shown above the button.
import { useQueryClient } from '@tanstack/react-query';
import { getRouteApi, useNavigate } from '@tanstack/react-router';
import { Info } from 'lucide-react';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { post, setCsrfToken } from '../api/client.ts';
import { keys, useAuthState } from '../api/queries.ts';
import type { Session } from '../api/types.ts';
import { Logo } from '../components/logo.tsx';
import { Button } from '../components/ui/button.tsx';
import { Card } from '../components/ui/card.tsx';
import { Field, Input } from '../components/ui/field.tsx';
import { ErrorBox, Loading } from '../components/ui/states.tsx';

const route = getRouteApi('/login');
const MIN_PASSWORD = 10;

export function LoginPage() {
  const search = route.useSearch();
  const state = useAuthState();
  const client = useQueryClient();
  const navigate = useNavigate();
  const [choice, setChoice] = useState<'signin' | 'signup' | undefined>(undefined);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<{ email?: string; password?: string }>({});
  const [failure, setFailure] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const emailRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);

  const mode = choice ?? (state.data && !state.data.hasUsers ? 'signup' : search.invitation ? 'signup' : 'signin');
  const firstUser = state.data?.hasUsers === false;
  const title = mode === 'signin' ? 'Sign in' : firstUser ? 'Create the administrator account' : 'Create an account';

  useEffect(() => {
    document.title = `${title} · Coffer`;
  }, [title]);

  if (!state.data) {
    return <div className="mx-auto max-w-md p-6">{state.error ? <ErrorBox error={state.error} retry={() => void state.refetch()} /> : <Loading />}</div>;
  }

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const problems: { email?: string; password?: string } = {};
    if (!/^[^\s@]+@[^\s@]+$/.test(email.trim())) problems.email = 'Enter an email address, like ann@example.com.';
    if (mode === 'signup' && password.length < MIN_PASSWORD) problems.password = `Choose a password of at least ${MIN_PASSWORD} characters.`;
    if (mode === 'signin' && password === '') problems.password = 'Enter your password.';
    setErrors(problems);
    setFailure(undefined);
    if (problems.email) return emailRef.current?.focus();
    if (problems.password) return passwordRef.current?.focus();
    setBusy(true);
    try {
      const session = await post<Session>(mode === 'signin' ? '/api/auth/login' : '/api/auth/signup', { email: email.trim(), password, ...(mode === 'signup' && search.invitation ? { invitation: search.invitation } : {}) });
      setCsrfToken(session.csrfToken);
      client.setQueryData(keys.session, session);
      void client.invalidateQueries({ queryKey: keys.authState });
      await navigate({ to: search.redirect ?? '/' });
    } catch (err) {
      setFailure(err);
      setBusy(false);
    }
  };

  return (
    <main className="flex min-h-screen items-start justify-center bg-slate-50 px-4 pt-[12vh]">
      <div className="w-full max-w-sm">
        <div className="mb-6 flex justify-center">
          <Logo />
        </div>
        <Card className="p-6">
          <h1 className="mb-1 text-xl font-semibold">{title}</h1>
          {firstUser ? <p className="mb-4 text-sm text-slate-600">This server has no accounts yet. The first one manages the server and invites the others.</p> : <div className="mb-4" />}
          {search.expired && mode === 'signin' ? (
            <p className="mb-4 flex gap-2 rounded-md border border-blue-200 bg-blue-50 p-3 text-sm text-blue-900" role="status">
              <Info className="mt-0.5 h-4 w-4 shrink-0" aria-hidden="true" />
              Your session has ended. Sign in again to continue where you were.
            </p>
          ) : null}
          <form onSubmit={(e) => void submit(e)} noValidate className="space-y-4">
            <Field label="Email" error={errors.email}>
              {(p) => <Input {...p} ref={emailRef} type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />}
            </Field>
            <Field label="Password" error={errors.password} hint={mode === 'signup' ? `At least ${MIN_PASSWORD} characters.` : undefined}>
              {(p) => <Input {...p} ref={passwordRef} type="password" autoComplete={mode === 'signin' ? 'current-password' : 'new-password'} value={password} onChange={(e) => setPassword(e.target.value)} />}
            </Field>
            {failure ? <ErrorBox error={failure} title={mode === 'signin' ? 'Could not sign in' : 'Could not create the account'} /> : null}
            <Button type="submit" variant="primary" className="w-full justify-center" busy={busy}>
              {mode === 'signin' ? 'Sign in' : 'Create account'}
            </Button>
          </form>
          {!firstUser && (state.data.signup === 'open' || search.invitation) ? (
            <p className="mt-4 text-center text-sm text-slate-600">
              {mode === 'signin' ? 'No account yet? ' : 'Have an account? '}
              <button type="button" className="font-medium text-brand-700 underline" onClick={() => (setChoice(mode === 'signin' ? 'signup' : 'signin'), setErrors({}), setFailure(undefined))}>
                {mode === 'signin' ? 'Create one' : 'Sign in'}
              </button>
            </p>
          ) : null}
        </Card>
      </div>
    </main>
  );
}
