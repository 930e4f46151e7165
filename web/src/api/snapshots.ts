// Snapshots are read by an agent (it holds the passphrase; the server cannot decrypt them), through the
// server: the list, one directory per request, a diff, a tar of chosen paths.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback } from 'react';
import { get, post, qs } from './client.ts';
import type { DiffAnswer, SnapshotList, TreePage } from './dashboard-types.ts';

export interface RepoRef {
  readonly destination: string;
  readonly agent: string;
}

/** Entries shown at once: a page of a huge folder draws quickly (a thousand rows took most of a second). */
export const TREE_PAGE = 200;

/** Where a page of a folder starts: after a name, among the names holding a filter. */
export interface TreeCursor {
  readonly after?: string | undefined;
  readonly filter?: string | undefined;
}

const treeKey = (ref: RepoRef, snapshot: string, path: string, at: TreeCursor) => ['tree', ref.destination, ref.agent, snapshot, path, at.after ?? '', at.filter ?? ''] as const;
const treeUrl = (ref: RepoRef, snapshot: string, path: string, at: TreeCursor) =>
  `/api/snapshots/${encodeURIComponent(snapshot)}/tree${qs({ destination: ref.destination, agent: ref.agent, path, after: at.after, filter: at.filter, limit: TREE_PAGE })}`;

export function useSnapshotList(ref: RepoRef | undefined) {
  return useQuery({
    queryKey: ['snapshots', ref?.destination, ref?.agent],
    queryFn: () => get<SnapshotList>(`/api/snapshots${qs({ destination: ref!.destination, agent: ref!.agent })}`),
    enabled: ref !== undefined,
    staleTime: 30_000,
  });
}

export function useTree(ref: RepoRef, snapshot: string, path: string, at: TreeCursor) {
  return useQuery({
    queryKey: treeKey(ref, snapshot, path, at),
    queryFn: () => get<TreePage>(treeUrl(ref, snapshot, path, at)),
    // Another page or filter of the same folder: the rows shown stay until the new ones come (no jump).
    placeholderData: (previous, query) => (query?.queryKey[3] === snapshot && query.queryKey[4] === path ? previous : undefined),
    // A snapshot never changes: a directory read once is good for the whole visit.
    staleTime: Infinity,
    gcTime: 10 * 60_000,
  });
}

/** Reads a directory ahead, e.g. when the pointer rests on it, so opening it is instant. */
export function usePrefetchTree(ref: RepoRef, snapshot: string) {
  const client = useQueryClient();
  return useCallback(
    (path: string) => void client.prefetchQuery({ queryKey: treeKey(ref, snapshot, path, {}), queryFn: () => get<TreePage>(treeUrl(ref, snapshot, path, {})), staleTime: Infinity }),
    [client, ref, snapshot],
  );
}

export function useDiff(ref: RepoRef, from: string | undefined, to: string | undefined) {
  return useQuery({
    queryKey: ['diff', ref.destination, ref.agent, from, to],
    queryFn: () => get<DiffAnswer>(`/api/snapshots/${encodeURIComponent(from!)}/diff${qs({ destination: ref.destination, agent: ref.agent, to })}`),
    enabled: from !== undefined && to !== undefined,
    staleTime: Infinity,
  });
}

/** Asks for a tar of the paths; the answer is an address the browser downloads from. */
export async function requestDownload(ref: RepoRef, snapshot: string, paths: readonly string[]): Promise<string> {
  const answer = await post<{ url: string }>(`/api/snapshots/${encodeURIComponent(snapshot)}/download`, { destination: ref.destination, agent: ref.agent, paths });
  return answer.url;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}
