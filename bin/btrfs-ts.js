#!/usr/bin/env node
// btrfs-ts command line entry point (the code is in dist/cli/main.js, built by `npm run build`).
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (status) => process.exit(status),
  (err) => {
    process.stderr.write(`ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
