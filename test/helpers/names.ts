// Object names for tests: every store refuses names outside the repository layout (src/store/layout.ts).
import crypto from 'node:crypto';
import { packName } from '../../src/store/store.ts';

/** A valid name in `dir` derived from `seed`: the same seed gives the same name. */
export function objectName(dir: 'keys' | 'data' | 'index' | 'snapshots', seed: string | number): string {
  const id = crypto.hash('sha256', `${dir} ${seed}`, 'hex');
  return dir === 'data' ? packName(id) : `${dir}/${id}`;
}
