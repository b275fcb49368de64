// Shared by the fuzz drivers: the per-run generator, so (seed, run) always means the same input.
import { Rng } from './prng.js';

export function runRng(seed: number, run: number): Rng {
  return new Rng((Math.imul(seed, 0x9e3779b1) ^ Math.imul(run + 1, 0x85ebca77)) >>> 0);
}
