// Bundles the command line program (dist/cli/main.js and every module it reaches) into one CommonJS
// file, dist/cli/main.bundle.cjs, which bin/btrfs-ts.js loads with require().
//
// Why: node loads ~20 ES modules one by one (resolve, read, compile, link, with its ESM loader set up
// first); one CommonJS file starts 12 ms sooner warm and ~20 ms sooner from a cold page cache, with
// 1.5 MiB less peak RSS (docs/benchmarks.md, "What we tried"). The library (dist/index.js) stays as
// tsc emits it.
//
// The bundle sits in dist/cli/ like main.js, so the paths the code derives from its own location
// (../../native/build, ../../package.json, node_modules) stay right; import.meta.url is replaced by
// the bundle's own file URL. Dependencies stay outside (native addons, loaded with require).
// Without esbuild (a development dependency) it says so and the bin uses dist/cli/main.js.
// Run after tsc by the build, prepare and test scripts.
import { readFileSync, rmSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'cli', 'main.bundle.cjs');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  rmSync(outfile, { force: true }); // never leave a bundle older than dist/ behind
  console.error('btrfs-ts: CLI bundle skipped (esbuild not installed; bin/btrfs-ts.js loads dist/cli/main.js)');
  process.exit(0);
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
await esbuild.build({
  entryPoints: [join(root, 'dist', 'cli', 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: Object.keys(pkg.dependencies ?? {}),
  define: { 'import.meta.url': 'bundleFileUrl' },
  banner: { js: "'use strict';\nconst bundleFileUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
// esbuild leaves an unchanged output file alone, but the bin trusts the bundle only when it is newer
// than dist/cli/main.js, which tsc has just rewritten.
const now = new Date();
utimesSync(outfile, now, now);
