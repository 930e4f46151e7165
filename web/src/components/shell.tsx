// The frame around every page: navigation (a sidebar, or a menu on a phone), who is signed in, whether
// live updates are flowing, and the session check that sends a visitor to sign in.
import { useQueryClient } from '@tanstack/react-query';
import { Link, Outlet, useLocation, useNavigate } from '@tanstack/react-router';
import { Activity, Archive, BarChart3, Bell, History, LayoutDashboard, ListChecks, LogOut, Menu, Server, Settings, WifiOff, X } from 'lucide-react';
import { useEffect, useRef, useState, type ComponentType } from 'react';
import { ApiError, onUnauthorized, post, setCsrfToken } from '../api/client.ts';
import { useLiveEvents, type LiveState } from '../api/events.ts';
import { ACTIVE_STATUSES, keys, useAlerts, useSession, useTasks } from '../api/queries.ts';
import { cn } from '../lib/cn.ts';
import { Logo } from './logo.tsx';
import { Button } from './ui/button.tsx';
import { ErrorBox, Loading } from './ui/states.tsx';

interface NavItem {
  readonly to: string;
  readonly label: string;
  readonly icon: ComponentType<{ className?: string }>;
  readonly count?: 'tasks' | 'alerts';
}

const NAV: readonly NavItem[] = [
  { to: '/', label: 'Overview', icon: LayoutDashboard },
  { to: '/tasks', label: 'Tasks', icon: Activity, count: 'tasks' },
  { to: '/agents', label: 'Agents', icon: Server },
  { to: '/plans', label: 'Plans', icon: ListChecks },
  { to: '/snapshots', label: 'Snapshots', icon: Archive },
  { to: '/history', label: 'History', icon: History },
  { to: '/alerts', label: 'Alerts', icon: Bell, count: 'alerts' },
  { to: '/reports', label: 'Reports', icon: BarChart3 },
  { to: '/settings', label: 'Settings', icon: Settings },
];

function LiveIndicator({ state }: { readonly state: LiveState }) {
  const text = state === 'live' ? 'Live updates on' : state === 'connecting' ? 'Connecting…' : 'Reconnecting…';
  return (
    <span className="inline-flex items-center gap-1.5 text-xs text-slate-600" role="status">
      <span aria-hidden="true" className={cn('h-2 w-2 rounded-full', state === 'live' ? 'bg-green-500' : 'bg-amber-500 animate-pulse')} />
      {text}
    </span>
  );
}

/** After a few seconds without the live connection, a banner says the page may be out of date. */
function ConnectionBanner({ state }: { readonly state: LiveState }) {
  const [shown, setShown] = useState(false);
  useEffect(() => {
    if (state !== 'reconnecting') return setShown(false);
    const timer = setTimeout(() => setShown(true), 3000);
    return () => clearTimeout(timer);
  }, [state]);
  if (!shown) return null;
  return (
    <div role="status" className="mb-4 flex items-center gap-2 rounded-md border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-900">
      <WifiOff className="h-4 w-4 shrink-0" aria-hidden="true" />
      <span>The connection to the server is lost; retrying every few seconds. What you see may be out of date until it is back.</span>
    </div>
  );
}

function Nav({ onNavigate }: { readonly onNavigate?: () => void }) {
  const tasks = useTasks();
  const alerts = useAlerts('open');
  const counts = {
    tasks: tasks.data?.filter((j) => (ACTIVE_STATUSES as readonly string[]).includes(j.status)).length ?? 0,
    alerts: alerts.data?.filter((a) => a.acknowledgedAt === null).length ?? 0,
  };
  return (
    <nav aria-label="Main">
      <ul className="space-y-0.5">
        {NAV.map((item) => {
          const count = item.count ? counts[item.count] : 0;
          return (
            <li key={item.to}>
              <Link
                to={item.to}
                onClick={onNavigate}
                activeOptions={{ exact: item.to === '/' }}
                className="flex items-center gap-3 rounded-md px-3 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100 hover:text-slate-900 data-[status=active]:bg-brand-50 data-[status=active]:text-brand-800"
              >
                <item.icon className="h-4 w-4 shrink-0" aria-hidden="true" />
                <span className="flex-1">{item.label}</span>
                {count > 0 ? (
                  <span className={cn('num min-w-6 rounded-full px-1.5 text-center text-xs font-semibold', item.count === 'alerts' ? 'bg-red-600 text-white' : 'bg-blue-600 text-white')}>
                    <span className="sr-only">{item.count === 'alerts' ? ', unacknowledged alerts: ' : ', active tasks: '}</span>
                    {count}
                  </span>
                ) : null}
              </Link>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}

export function Shell() {
  const session = useSession();
  const client = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const main = useRef<HTMLElement>(null);
  const live = useLiveEvents(session.data !== undefined);

  useEffect(() => {
    if (session.data) setCsrfToken(session.data.csrfToken);
  }, [session.data]);

  // A session that ends while the page is open (expired, signed out elsewhere): sign in again, then come back.
  useEffect(
    () =>
      onUnauthorized(() => {
        client.removeQueries({ queryKey: keys.session });
        void navigate({ to: '/login', search: { redirect: window.location.pathname + window.location.search, expired: true } });
      }),
    [client, navigate],
  );

  const unauthenticated = session.error instanceof ApiError && session.error.status === 401;
  useEffect(() => {
    if (!unauthenticated) return;
    // Where the visitor wanted to go, read once: after signing in they land there.
    const wanted = window.location.pathname + window.location.search;
    void navigate({ to: '/login', search: wanted === '/' ? {} : { redirect: wanted }, replace: true });
  }, [unauthenticated, navigate]);

  // After a page change, focus moves to the new page's content, as a screen reader user expects.
  const first = useRef(true);
  useEffect(() => {
    setMenuOpen(false);
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus({ preventScroll: true });
  }, [location.pathname]);

  if (!session.data) {
    if (session.error && !unauthenticated) {
      return (
        <div className="mx-auto max-w-lg p-6">
          <ErrorBox error={session.error} retry={() => void session.refetch()} />
        </div>
      );
    }
    return <Loading label="Opening the dashboard…" className="min-h-screen" />;
  }

  const signOut = async (): Promise<void> => {
    try {
      await post('/api/auth/logout');
    } finally {
      client.clear();
      void navigate({ to: '/login' });
    }
  };

  const sidebarFooter = (
    <div className="space-y-2 border-t border-slate-200 px-3 pt-3">
      <LiveIndicator state={live} />
      <p className="truncate text-xs text-slate-600" title={session.data.user.email}>
        {session.data.user.email}
        {session.data.user.role === 'admin' ? ' · admin' : ''}
      </p>
      <Button size="sm" variant="ghost" className="-ml-2" onClick={() => void signOut()}>
        <LogOut className="h-4 w-4" aria-hidden="true" />
        Sign out
      </Button>
    </div>
  );

  return (
    <div className="min-h-screen md:flex">
      <a href="#main" className="sr-only z-50 rounded bg-white px-3 py-2 focus:not-sr-only focus:fixed focus:top-2 focus:left-2">
        Skip to content
      </a>
      {/* Phone: a bar with the menu button; the menu opens below it. */}
      <header className="sticky top-0 z-30 flex items-center justify-between border-b border-slate-200 bg-white px-4 py-2 md:hidden">
        <Logo />
        <Button variant="ghost" size="icon" aria-expanded={menuOpen} aria-controls="mobile-menu" aria-label={menuOpen ? 'Close menu' : 'Open menu'} onClick={() => setMenuOpen((o) => !o)}>
          {menuOpen ? <X className="h-5 w-5" aria-hidden="true" /> : <Menu className="h-5 w-5" aria-hidden="true" />}
        </Button>
      </header>
      {menuOpen ? (
        <div id="mobile-menu" className="fixed inset-x-0 top-[49px] bottom-0 z-20 overflow-y-auto bg-white p-3 md:hidden">
          <Nav onNavigate={() => setMenuOpen(false)} />
          <div className="mt-4">{sidebarFooter}</div>
        </div>
      ) : null}
      <div className="hidden w-60 shrink-0 border-r border-slate-200 bg-white md:block">
      <aside className="sticky top-0 flex h-screen flex-col">
        <div className="px-5 py-4">
          <Logo />
        </div>
        <div className="flex-1 overflow-y-auto px-3">
          <Nav />
        </div>
        <div className="pb-4">{sidebarFooter}</div>
      </aside>
      </div>
      <main id="main" ref={main} tabIndex={-1} className="min-w-0 flex-1 px-4 py-5 outline-none sm:px-6 lg:px-8">
        <div className="mx-auto max-w-7xl">
          <ConnectionBanner state={live} />
          <Outlet />
        </div>
      </main>
    </div>
  );
}
