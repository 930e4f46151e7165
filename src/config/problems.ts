// Every problem in a configuration file, each with its line and the field it is about: YAML syntax
// errors, and the schema's complaints (a wrong type, a bad cron line, an unknown field — named).
import { LineCounter, parseDocument, isMap, isScalar, type Document, type Node } from 'yaml';
import type { z } from 'zod';

export interface ConfigProblem {
  /** 1-based; absent when the problem is about the file as a whole. */
  readonly line?: number;
  /** Dotted path of the field: plans.home.schedule.cron */
  readonly field?: string;
  readonly message: string;
}

export function describeProblem(file: string, problem: ConfigProblem): string {
  const where = problem.line !== undefined ? `${file} line ${problem.line}` : file;
  return `${where}: ${problem.field ? `${problem.field}: ` : ''}${problem.message}`;
}

export interface ParsedText {
  /** The YAML as plain data, when it parsed. */
  readonly data?: unknown;
  readonly problems: ConfigProblem[];
  /** Finds the line of a field, for problems found after parsing. */
  readonly locate: (path: readonly PropertyKey[], key?: string) => number | undefined;
}

export function parseYaml(text: string): ParsedText {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const locate = (path: readonly PropertyKey[], key?: string): number | undefined => lineOf(doc, lines, path, key);
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => ({ line: lines.linePos(e.pos[0]).line, message: e.message.split('\n')[0]! })),
      locate,
    };
  }
  return { data: doc.toJS() ?? {}, problems: [], locate };
}

/** The schema's issues as problems; an unknown key is named and located on its own line. */
export function schemaProblems(issues: readonly z.core.$ZodIssue[], locate: ParsedText['locate']): ConfigProblem[] {
  return issues.flatMap((issue): ConfigProblem[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => {
        const line = locate(issue.path, key);
        return {
          ...(line !== undefined ? { line } : {}),
          field: [...issue.path, key].join('.'),
          message: `unknown field "${key}"; check its spelling`,
        };
      });
    }
    const line = locate(issue.path);
    return [{ ...(line !== undefined ? { line } : {}), field: issue.path.join('.') || 'top level', message: plainMessage(issue.message) }];
  }).sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

/** zod's "Invalid input: expected string, received undefined" and "Too small: …" in words a user reads. */
function plainMessage(message: string): string {
  const bound = /^Too (?:small|big): expected (number|string|array) to (?:be|have) (>=|>|<=|<)(-?[\d.]+)(?: characters| items)?$/.exec(message);
  if (bound) {
    const [, kind, op, n] = bound;
    const words = { '>=': `${n} or more`, '>': `more than ${n}`, '<=': `${n} or less`, '<': `less than ${n}` }[op!]!;
    if (kind === 'number') return `must be ${words}`;
    if (kind === 'string') return op === '>=' && n === '1' ? 'must not be empty' : `must have ${words} characters`;
    return `must list ${words} entries`;
  }
  if (message === 'Invalid input: expected int, received number') return 'must be a whole number';
  const type = /^Invalid input: expected (\w+), received (\w+)$/.exec(message);
  if (!type) return message;
  const a = (word: string): string => `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;
  return type[2] === 'undefined' ? `missing: ${a(type[1]!)} is required here` : `expected ${a(type[1]!)}, not ${a(type[2]!)}`;
}

/** The line of the value at `path`, or of `key` inside it; the nearest existing parent when the path is missing. */
function lineOf(doc: Document, lines: LineCounter, path: readonly PropertyKey[], key?: string): number | undefined {
  let node: unknown = doc.contents;
  let line = startLine(node, lines);
  for (const part of key === undefined ? path : [...path, key]) {
    const isLast = key !== undefined && part === key;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === part);
      if (!pair) break;
      line = startLine(isLast ? pair.key : (pair.value ?? pair.key), lines) ?? line;
      node = pair.value;
    } else if (node && typeof node === 'object' && 'items' in node && typeof part === 'number') {
      node = (node as { items: unknown[] }).items[part];
      line = startLine(node, lines) ?? line;
    } else break;
  }
  return line;
}

function startLine(node: unknown, lines: LineCounter): number | undefined {
  const range = (node as Node | undefined)?.range;
  return range ? lines.linePos(range[0]).line : undefined;
}
