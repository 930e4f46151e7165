// Random secrets handed to clients (session cookies, API keys, invitations) and how they are stored:
// only a SHA-256 of each. These are 256-bit random values, not passwords, so a fast hash is enough to
// make a stolen database useless, and it lets a request find its key with one indexed lookup.
import crypto from 'node:crypto';

export function newToken(prefix = ''): string {
  return `${prefix}${crypto.randomBytes(32).toString('base64url')}`;
}

export function tokenHash(token: string): string {
  return crypto.hash('sha256', token, 'hex');
}

export const API_KEY_PREFIX = 'cof_';

/** Equal strings in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}
