// `npm run soak -- --seeds N [--first F] [--seed S[,S2...]] [--receiver progs] [--proto 1,2] [--entries N]
//                  [--mutations N] [--max-file BYTES] [--no-send-check] [--keep]`
// Runs the differential soak for each seed; prints one line per seed and the replay command of every
// failing seed; exits 1 if any seed failed. Operation logs of failing seeds go to /tmp.
import { writeFileSync } from 'node:fs';
import { soakSeed } from './soak.js';

const USAGE = `usage: npm run soak -- --seeds N [--first F] [--seed S[,S2...]] [--receiver progs] [--proto 1,2]
                     [--entries N] [--mutations N] [--max-file BYTES] [--no-send-check] [--keep]`;
const OPTIONS = new Set(['seeds', 'first', 'seed', 'receiver', 'proto', 'entries', 'mutations', 'max-file', 'no-send-check', 'keep']);

/** The options; an unknown one (a typo would otherwise start a default soak) is an error. */
function parse(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}\n${USAGE}`);
    if (!OPTIONS.has(a.slice(2))) throw new Error(`unknown option ${a}\n${USAGE}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = 'true';
    else out[a.slice(2)] = argv[++i]!;
  }
  return out;
}

async function main(): Promise<number> {
  if (process.argv.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  const args = parse(process.argv.slice(2));
  // A reader that goes away (`| head`) ends the soak after the current seed, which removes its images.
  let readerGone = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    readerGone = true;
  });
  const seeds: number[] = args.seed !== undefined
    ? args.seed.split(',').map(Number)
    : Array.from({ length: Number(args.seeds ?? 3) }, (_, i) => Number(args.first ?? 1) + i);
  const receiver = args.receiver === 'progs' ? 'progs' : 'btrfs-ts';
  const protocols = (args.proto ?? '1,2').split(',').map(Number) as (1 | 2)[];
  const tree = {
    ...(args.entries ? { entries: Number(args.entries) } : {}),
    ...(args.mutations ? { mutations: Number(args.mutations) } : {}),
    ...(args['max-file'] ? { maxFileSize: Number(args['max-file']) } : {}),
  };
  console.log(`soak: ${seeds.length} seed(s), receiver ${receiver} vs btrfs-progs, protocols ${protocols.join(',')}`);
  const failed: number[] = [];
  let streams = 0;
  let bytes = 0;
  let entries = 0;
  let sendsCompared = 0;
  const t0 = Date.now();
  for (const seed of seeds) {
    if (readerGone) return 1;
    const r = await soakSeed({ seed, receiver, protocols, tree, checkSend: args['no-send-check'] !== 'true', keepOnFailure: args.keep === 'true', log: (l) => console.log(l) });
    sendsCompared += r.sendsCompared;
    streams += r.streams;
    bytes += r.streamBytes;
    entries += r.compared;
    const progsNotes = r.progsNotes.length ? `, ${r.progsNotes.length} progs divergence(s) (first: ${r.progsNotes[0]})` : '';
    const flags = r.flagNotes.length ? `, ${r.flagNotes.length} flag note(s) (first: ${r.flagNotes[0]})` : '';
    console.log(`seed ${seed}: ${r.ok ? 'OK' : 'FAILED'} — ${r.streams} streams (${r.sendsCompared} identical from btrfs-ts send), ${(r.streamBytes / 1048576).toFixed(1)} MiB, ${r.compared} entries compared, ${(r.ms / 1000).toFixed(1)} s${flags}${progsNotes}`);
    if (!r.ok) {
      failed.push(seed);
      const logFile = `/tmp/btrfs-ts-soak-seed-${seed}.log`;
      writeFileSync(logFile, [...r.problems, '', ...r.opsLog, ''].join('\n'));
      console.log(`  ${r.problems[0]}`);
      console.log(`  replay: npm run soak -- --seed ${seed}   (operation log: ${logFile})`);
    }
  }
  console.log(`soak summary: ${seeds.length - failed.length}/${seeds.length} seeds OK, ${streams} streams (${sendsCompared} byte-identical from btrfs-ts send), ${(bytes / 1048576).toFixed(1)} MiB, ${entries} entries compared, ${((Date.now() - t0) / 1000).toFixed(0)} s${failed.length ? `; failing seeds: ${failed.join(',')}` : ''}`);
  return failed.length ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(`ERROR: ${(err as Error).message}`);
  process.exit(1);
});
