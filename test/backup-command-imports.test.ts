// What the backup command loads before it derives the repository key: everything imported then is still
// in memory while Argon2id takes its 64 MiB, so the configuration's schemas (zod, YAML), the dump
// sources and scale-out are loaded only by runs that use them (bench/PROFILE.md: 156 -> 134 MiB peak
// for a no-change backup of the kernel tree).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

test('the backup command imports neither the configuration schemas nor dump sources nor scale-out until a run needs them', async () => {
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = new Set();
    registerHooks({
      resolve(specifier, context, next) {
        const result = next(specifier, context);
        loaded.add(result.url);
        return result;
      },
    });
    const { backupCommand } = await import(${JSON.stringify(new URL('../src/cli/commands/backup.ts', import.meta.url).href)});
    backupCommand();
    console.log(JSON.stringify([...loaded]));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  const urls = JSON.parse(stdout) as string[];
  assert.ok(urls.some((u) => u.endsWith('/src/engine/backup/backup.ts')), 'the engine itself is loaded');
  const unwanted = urls.filter((u) => /\/node_modules\/(zod|yaml)\/|\/src\/(config\/config-file|config\/automation|daemon\/sources|scale-out\/local-run)\.ts$/.test(u));
  assert.deepEqual(unwanted, []);
});
