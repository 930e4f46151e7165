// Node.js flags every Coffer process starts with. Under Coffer's allocation rate V8 grows an isolate's
// young generation up to 64 MiB semi-spaces, mostly free at the peak; at 8 MiB a kernel-tree restore peaks
// ~90 MiB lower and its backup ~45 MiB at the same CPU (smaller caps cost its backup 3–5 CPU-s more:
// bench/PROFILE.md, "Young generation capped"). The flag is every isolate's, and it overrides a
// Worker's resourceLimits.maxYoungGenerationSizeMb. A V8 flag only takes effect as the process starts
// (v8.setFlagsFromString leaves the main isolate's new space as it is), so it is on each command line that
// starts Coffer: bin/coffer.js's sh line (which must say the same: test/node-flags.test.ts), the
// launcher's re-run on the bundled Node (process.execArgv), the systemd units, and the forked scale-out
// workers.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
