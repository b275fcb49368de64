// Prints one plain closing line, "Tests: N passed, N failed, N skipped", after vitest's own summary,
// so tools that read only the last line of a run can count it.
import { writeSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A file that failed to load has no tests but must still count as a failure.
      if (module.state() === 'failed' && ![...module.children.allTests()].some((t) => t.result().state === 'failed')) failed++;
    }
    failed += unhandledErrors.length;
    // Written at exit, after vitest's own summary, so it is the run's last line.
    const line = `\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`;
    process.once('exit', () => writeSync(1, line));
  }
}
