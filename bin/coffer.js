#!/bin/sh
":" //; MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} exec node --max-semi-space-size=8 "$0" "$@"
// Launcher. Coffer needs Node 24 (node:sqlite, zstd, Argon2). npm scripts and npx put the `node`
// dependency (Node 24) first on PATH; a global install may find an older system Node, so in that case
// this re-runs itself with the Node 24 binary the package depends on. Written for any Node version.
// The second line is for sh (Node reads it as a string and a comment): it starts Node with
// src/node-flags.ts's flags and environment, which V8 and glibc take only as the process starts. `#!/usr/bin/env -S node …` would
// say the same in one line, but BusyBox's env (NAS boxes, Alpine) has no -S.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module, { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  let bundled;
  try {
    bundled = createRequire(import.meta.url).resolve('node/bin/node');
  } catch {
    process.stderr.write(`coffer: needs Node.js 24 or newer (this is ${process.version}) and its bundled Node is missing; reinstall coffer\n`);
    process.exit(1);
  }
  // The Node flags this ran with (the shebang's) go to the bundled Node too.
  const child = spawn(bundled, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else {
  // Node keeps compiled code (and stripped TypeScript) in its own cache directory, which saves most of
  // the start-up time of every later run. Enabled here it covers this thread only: the variable makes
  // the worker threads and worker processes (which load most of the modules again) use it too.
  // (When NODE_COMPILE_CACHE was set already, every thread has it: the status is then ALREADY_ENABLED.)
  const cache = module.enableCompileCache?.();
  if (cache && cache.status === module.constants.compileCacheStatus.ENABLED) process.env.NODE_COMPILE_CACHE = cache.directory;
  // From a checkout the TypeScript sources run directly; the published package ships compiled JavaScript.
  const source = new URL('../src/cli/main.ts', import.meta.url);
  await import(existsSync(source) ? source.href : pathToFileURL(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))).href);
}
