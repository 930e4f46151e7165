// Errors a route throws on purpose: a status and a message written for the person or program calling.
export class HttpError extends Error {
  override name = 'HttpError';
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

/** The one answer for a resource that does not exist or belongs to someone else: they look the same. */
export function notFound(what: string): HttpError {
  return new HttpError(404, `${what} not found`);
}
