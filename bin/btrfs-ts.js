#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node --max-semi-space-size=2 --single-threaded-gc
// btrfs-ts command line entry point (the code is in dist/cli/main.js, built by `npm run build`).
// --max-semi-space-size=2 (MiB): a receive allocates small objects per command; V8's young generation
// otherwise grows to 16 MiB semi-spaces and the peak RSS by 10+ MiB, for no measurable speed.
// --single-threaded-gc: V8's garbage collector without helper threads, ~1 MiB less peak RSS at the same
// speed. (Fully --single-threaded saves 2 MiB more but compiles on the main thread: the dump is 10 %
// slower; docs/benchmarks.md, "What we tried".)
// -u NODE_EXTRA_CA_CERTS: btrfs-ts makes no TLS connections, but node reads and parses the CA bundle
// that variable names at every start-up, whether used or not: 30 ms and 2 MiB of peak RSS where it is
// set (docs/benchmarks.md).
// The program is loaded with a dynamic import so that even a failure to load it (e.g. an I/O error
// reading a module file) ends as one `ERROR:` line and exit 1, not a stack trace.
import('../dist/cli/main.js').then(({ main }) => main(process.argv)).then(
  (status) => process.exit(status),
  (err) => {
    process.stderr.write(`ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
