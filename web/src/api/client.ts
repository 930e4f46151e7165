// Every call to the server goes through here: JSON in and out, the session's CSRF token on writes, and
// errors turned into messages a person can act on.

/** An answer that is not a success, or no answer at all (status 0). */
export class ApiError extends Error {
  readonly status: number;
  /** No Coffer server answered: the network, or a proxy in front of a server that is down. */
  readonly unreachable: boolean;

  constructor(status: number, message: string, unreachable = false) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.unreachable = unreachable;
  }
}

let csrfToken = '';
const unauthorizedListeners = new Set<() => void>();

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Told when a request finds the session gone (expired, or ended elsewhere). */
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export const SERVER_DOWN = 'The Coffer server does not answer. Check that it is running and reachable; this page tries again by itself.';

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  try {
    return await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch {
    throw new ApiError(0, SERVER_DOWN, true);
  }
}

async function failure(res: Response, path: string): Promise<ApiError> {
  let message: string | undefined;
  try {
    message = ((await res.json()) as { error?: string }).error;
  } catch {
    // Not JSON: a proxy's error page, say. The status line is all there is.
  }
  if (res.status === 401 && !path.startsWith('/api/auth/')) for (const l of unauthorizedListeners) l();
  // A gateway error without Coffer's own message: the proxy could not reach the server.
  if (message === undefined && res.status >= 502 && res.status <= 504) return new ApiError(res.status, SERVER_DOWN, true);
  return new ApiError(res.status, message ?? `${res.status} ${res.statusText}`);
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(method, path, body);
  if (!res.ok) throw await failure(res, path);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string): Promise<T> => api<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}): Promise<T> => api<T>('POST', path, body);
export const put = <T>(path: string, body: unknown): Promise<T> => api<T>('PUT', path, body);
export const patch = <T>(path: string, body: unknown): Promise<T> => api<T>('PATCH', path, body);
export const del = <T>(path: string): Promise<T> => api<T>('DELETE', path);

/** A query string from the defined values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, String(v));
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** What to tell a person about an error, whatever threw it. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
