import { cn } from '../../lib/cn.ts';

const tones = {
  green: 'bg-brand-600',
  blue: 'bg-blue-600',
  amber: 'bg-amber-500',
  red: 'bg-red-600',
  slate: 'bg-slate-400',
} as const;

/**
 * A progress bar. Without a known total it is striped and says so to screen readers. The width
 * animates, so a bar that moves every second glides instead of jumping.
 */
export function ProgressBar({ value, label, tone = 'green', indeterminate, className, valueText }: { readonly value: number; readonly label: string; readonly tone?: keyof typeof tones; readonly indeterminate?: boolean; readonly className?: string; readonly valueText?: string }) {
  const pct = Math.max(0, Math.min(100, value));
  return (
    <div
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      {...(indeterminate ? {} : { 'aria-valuenow': Math.round(pct) })}
      aria-valuetext={valueText ?? (indeterminate ? 'in progress' : `${Math.round(pct)}%`)}
      className={cn('h-2 w-full overflow-hidden rounded-full bg-slate-200', className)}
    >
      <div className={cn('h-full rounded-full transition-[width] duration-700 ease-out', tones[tone], indeterminate && 'bar-indeterminate')} style={{ width: `${indeterminate ? 100 : pct}%` }} />
    </div>
  );
}
