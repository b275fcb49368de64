#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node --max-semi-space-size=1 --single-threaded-gc
// btrfs-ts command line entry point (the code is in dist/cli/main.js, built by `npm run build`).
// --max-semi-space-size=1 (MiB): a receive allocates small objects per command; V8's young generation
// otherwise grows to 16 MiB semi-spaces and the peak RSS by 10+ MiB, for no measurable speed (1 MiB
// instead of 2: receives peak 1-3 MiB lower, the dump is as fast; docs/benchmarks.md).
// --single-threaded-gc: V8's garbage collector without helper threads, ~1 MiB less peak RSS at the same
// speed. (Fully --single-threaded saves 2 MiB more but compiles on the main thread: the dump is 10 %
// slower; docs/benchmarks.md, "What we tried".)
// -u NODE_EXTRA_CA_CERTS: btrfs-ts makes no TLS connections, but node reads and parses the CA bundle
// that variable names at every start-up, whether used or not: 30 ms and 2 MiB of peak RSS where it is
// set (docs/benchmarks.md).
//
// This file is CommonJS (bin/package.json), and it loads the program as one CommonJS bundle,
// dist/cli/main.bundle.cjs (scripts/bundle-cli.mjs): no ES module loader at start-up, one file instead of
// ~20 (12-20 ms sooner). It loads dist/cli/main.js instead when the bundle is missing, older than
// dist/cli/main.js (tsc ran without the bundler: never run stale code), or BTRFS_TS_NO_BUNDLE=1.
// Any failure to load ends as one `ERROR:` line and exit 1, not a stack trace.
'use strict';
const { statSync } = require('node:fs');
const { join } = require('node:path');

const dist = join(__dirname, '..', 'dist', 'cli');

/** The bundle when it is there and at least as new as the modules it was made from. */
function bundleIsCurrent() {
  if (process.env.BTRFS_TS_NO_BUNDLE === '1') return false;
  try {
    return statSync(join(dist, 'main.bundle.cjs')).mtimeMs >= statSync(join(dist, 'main.js')).mtimeMs;
  } catch {
    return false;
  }
}

// Every way out of main() ends in process.exit(). Should a promise the program waits for never settle (a
// bug: a window that stopped reading while its parser waits did once), the event loop would run dry and
// Node would exit with status 0, so that a receive cut short would look complete. It must not.
process.on('beforeExit', () => {
  process.stderr.write('ERROR: internal error: btrfs-ts stopped before it had finished (it waited for something that can never come); nothing it did is complete\n');
  process.exit(1);
});

const program = new Promise((resolve) => {
  resolve(bundleIsCurrent() ? require(join(dist, 'main.bundle.cjs')) : import('../dist/cli/main.js'));
});
program.then(({ main }) => main(process.argv)).then(
  (status) => process.exit(status),
  (err) => {
    process.stderr.write(`ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
