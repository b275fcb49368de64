#!/usr/bin/env -S node --max-semi-space-size=2
// btrfs-ts command line entry point (the code is in dist/cli/main.js, built by `npm run build`).
// --max-semi-space-size=2 (MiB): a receive allocates small objects per command; V8's young generation
// otherwise grows to 16 MiB semi-spaces and the peak RSS by 10+ MiB, for no measurable speed
// (docs/benchmarks.md, "What we tried").
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (status) => process.exit(status),
  (err) => {
    process.stderr.write(`ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
