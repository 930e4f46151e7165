// The dashboard's pages and their addresses. Every page but sign-in lives in the shell (navigation,
// live events), which sends a visitor without a session to sign in first.
import type { QueryClient } from '@tanstack/react-query';
import { createRootRouteWithContext, createRoute, createRouter, Outlet } from '@tanstack/react-router';
import { Shell } from './components/shell.tsx';
import { AgentsPage } from './pages/agents.tsx';
import { AlertsPage } from './pages/alerts.tsx';
import { HistoryPage, parseHistorySearch } from './pages/history.tsx';
import { JobPage } from './pages/job.tsx';
import { LoginPage } from './pages/login.tsx';
import { NotFound } from './pages/not-found.tsx';
import { OverviewPage } from './pages/overview.tsx';
import { PlanEditPage } from './pages/plan-edit.tsx';
import { PlansPage } from './pages/plans.tsx';
import { ReportsPage } from './pages/reports.tsx';
import { SettingsPage } from './pages/settings.tsx';
import { parseSnapshotsSearch, SnapshotsPage } from './pages/snapshots.tsx';
import { TasksPage } from './pages/tasks.tsx';

const root = createRootRouteWithContext<{ queryClient: QueryClient }>()({
  component: Outlet,
  notFoundComponent: NotFound,
});

const login = createRoute({
  getParentRoute: () => root,
  path: '/login',
  validateSearch: (s: Record<string, unknown>): { redirect?: string; invitation?: string; expired?: boolean } => ({
    ...(typeof s.redirect === 'string' && s.redirect.startsWith('/') ? { redirect: s.redirect } : {}),
    ...(typeof s.invitation === 'string' ? { invitation: s.invitation } : {}),
    ...(s.expired === true || s.expired === 'true' ? { expired: true } : {}),
  }),
  component: LoginPage,
});

const app = createRoute({ getParentRoute: () => root, id: 'app', component: Shell });

const page = <P extends string>(path: P, component: () => React.ReactNode) => createRoute({ getParentRoute: () => app, path, component });

const overview = page('/', OverviewPage);
const tasks = page('/tasks', TasksPage);
const job = page('/jobs/$jobId', JobPage);
const agents = page('/agents', AgentsPage);
const plans = page('/plans', PlansPage);
const planNew = page('/plans/new', PlanEditPage);
const planEdit = page('/plans/$planId', PlanEditPage);
const snapshots = createRoute({ getParentRoute: () => app, path: '/snapshots', validateSearch: parseSnapshotsSearch, component: SnapshotsPage });
const history = createRoute({ getParentRoute: () => app, path: '/history', validateSearch: parseHistorySearch, component: HistoryPage });
const alerts = page('/alerts', AlertsPage);
const reports = page('/reports', ReportsPage);
const settings = page('/settings', SettingsPage);

const tree = root.addChildren([login, app.addChildren([overview, tasks, job, agents, plans, planNew, planEdit, snapshots, history, alerts, reports, settings])]);

export const router = createRouter({ routeTree: tree, context: { queryClient: undefined! }, defaultPreload: 'intent', scrollRestoration: true });

declare module '@tanstack/react-router' {
  interface Register {
    router: typeof router;
  }
}
