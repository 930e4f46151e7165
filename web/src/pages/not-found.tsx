import { Link } from '@tanstack/react-router';
import { PageHeader } from '../components/ui/page.tsx';

export function NotFound() {
  return (
    <div className="p-6">
      <PageHeader title="Page not found" description="This address is not a page of the dashboard." />
      <Link to="/" className="text-brand-700 underline">
        Go to the overview
      </Link>
    </div>
  );
}
