import { useState } from 'react';
import { ACTIVE_STATUSES, useTasks } from '../api/queries.ts';
import { GlobalPauseBanner, GlobalPauseButton } from '../components/global-pause.tsx';
import { TaskList } from '../components/task-list.tsx';
import { Card } from '../components/ui/card.tsx';
import { PageHeader } from '../components/ui/page.tsx';
import { QueryState } from '../components/ui/states.tsx';
import { cn } from '../lib/cn.ts';

const FILTERS = [
  { id: 'all', label: 'All' },
  { id: 'active', label: 'Active' },
  { id: 'finished', label: 'Finished today' },
] as const;

type Filter = (typeof FILTERS)[number]['id'];

export function TasksPage() {
  const tasks = useTasks();
  const [filter, setFilter] = useState<Filter>('all');
  return (
    <>
      <PageHeader title="Tasks" description="Running, queued, paused and retrying jobs, and those finished in the last day." actions={<GlobalPauseButton />} />
      <GlobalPauseBanner />
      <div role="group" aria-label="Show" className="mb-3 inline-flex rounded-md border border-slate-300 bg-white p-0.5">
        {FILTERS.map((f) => (
          <button key={f.id} type="button" aria-pressed={filter === f.id} onClick={() => setFilter(f.id)} className={cn('rounded px-3 py-1 text-sm font-medium', filter === f.id ? 'bg-slate-800 text-white' : 'text-slate-700 hover:bg-slate-100')}>
            {f.label}
          </button>
        ))}
      </div>
      <Card aria-label="Tasks">
        <QueryState query={tasks}>
          {(jobs) => {
            const active = (j: (typeof jobs)[number]) => (ACTIVE_STATUSES as readonly string[]).includes(j.status);
            const shown = filter === 'all' ? jobs : filter === 'active' ? jobs.filter(active) : jobs.filter((j) => !active(j));
            return <TaskList jobs={shown} emptyText={filter === 'finished' ? 'No job finished in the last day.' : 'Nothing is running or waiting. Start a plan from the Plans page, or wait for its schedule.'} />;
          }}
        </QueryState>
      </Card>
    </>
  );
}
