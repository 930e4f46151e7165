import type { HTMLAttributes, TdHTMLAttributes, ThHTMLAttributes } from 'react';
import { cn } from '../../lib/cn.ts';

/** A table that scrolls sideways on a narrow screen instead of squeezing its columns. */
export function Table({ className, label, ...rest }: HTMLAttributes<HTMLTableElement> & { readonly label: string }) {
  return (
    // relative: screen-reader-only labels (absolutely placed) stay inside the scrolling box, not past the page's edge.
    <div className="relative overflow-x-auto" role="region" aria-label={label} tabIndex={0}>
      <table aria-label={label} className={cn('w-full border-collapse text-left text-sm', className)} {...rest} />
    </div>
  );
}

export function Th({ className, ...rest }: ThHTMLAttributes<HTMLTableCellElement>) {
  return <th scope="col" className={cn('border-b border-slate-200 bg-slate-50 px-3 py-2 text-xs font-semibold tracking-wide text-slate-600 uppercase', className)} {...rest} />;
}

export function Td({ className, ...rest }: TdHTMLAttributes<HTMLTableCellElement>) {
  return <td className={cn('border-b border-slate-100 px-3 py-2 align-middle', className)} {...rest} />;
}
