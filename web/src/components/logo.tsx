export function Logo() {
  return (
    <span className="inline-flex items-center gap-2 text-lg font-semibold tracking-tight text-slate-900">
      <svg viewBox="0 0 32 32" className="h-7 w-7" aria-hidden="true">
        <rect x="3" y="7" width="26" height="20" rx="4" fill="#15803d" />
        <rect x="8" y="3" width="16" height="6" rx="2" fill="#15803d" />
        <circle cx="16" cy="17" r="4" fill="white" />
      </svg>
      Coffer
    </span>
  );
}
