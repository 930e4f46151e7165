// Agent labels ("nas", "rack-2"): a plan can make every agent of its owner with a label a worker of its
// scaled-out runs. The agent's --label flags and the server's API check them with the same rule.

export const MAX_LABELS = 20;
const LABEL = /^[A-Za-z0-9][\w.-]{0,49}$/;

/** Why `label` is not a valid label, or undefined when it is. */
export function labelProblem(label: unknown): string | undefined {
  if (typeof label !== 'string' || !LABEL.test(label)) return `label ${JSON.stringify(label)}: use 1 to 50 letters, digits, '.', '_' or '-', starting with a letter or digit`;
  return undefined;
}

/** The labels checked, without duplicates, sorted; throws `make(problem)` for the first bad one. */
export function normalizeLabels(labels: readonly unknown[], make: (problem: string) => Error): string[] {
  for (const label of labels) {
    const problem = labelProblem(label);
    if (problem) throw make(problem);
  }
  const unique = [...new Set(labels as string[])].sort();
  if (unique.length > MAX_LABELS) throw make(`at most ${MAX_LABELS} labels, not ${unique.length}`);
  return unique;
}
