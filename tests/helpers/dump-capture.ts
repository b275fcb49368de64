// Run the dump in-process and collect its output (tests of src/dump).
import { dumpStream, type DumpOptions, type DumpSummary } from '../../src/dump/dump.js';

export async function dumpToBuffer(opts: Omit<DumpOptions, 'output'>): Promise<{ out: Buffer; summary: DumpSummary }> {
  const chunks: Buffer[] = [];
  const summary = await dumpStream({ ...opts, output: (c) => chunks.push(c) });
  return { out: Buffer.concat(chunks), summary };
}

/** The first differing line of two dumps, for readable failures (undefined when equal). */
export function firstDifference(got: Buffer, want: Buffer): string | undefined {
  if (got.equals(want)) return undefined;
  const g = got.toString('latin1').split('\n');
  const w = want.toString('latin1').split('\n');
  for (let i = 0; i < Math.max(g.length, w.length); i++) {
    if (g[i] !== w[i]) return `line ${i + 1}:\n  got:  ${JSON.stringify(g[i])}\n  want: ${JSON.stringify(w[i])}`;
  }
  return 'same lines, different bytes';
}
