// `btrfs-ts demo`: runs the demonstration shipped in dist/demo/demo.js (written by the send side),
// loaded only when asked for, so the CLI works without it.
import { Command } from 'commander';

type DemoModule = { runDemo?: (args: string[]) => unknown };

export function demoCommand(): Command {
  return new Command('demo')
    .description('run the built-in demonstration (needs root and a btrfs-capable kernel): sends and receives a sample tree and checks the result')
    .argument('[ARGS...]', 'passed to the demo')
    .allowUnknownOption(true)
    .helpOption('-h, --help', 'print this help and exit')
    .action(async (args: string[]) => {
      const modulePath = '../demo/demo.js';
      let mod: DemoModule;
      try {
        mod = (await import(modulePath)) as DemoModule;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ERR_MODULE_NOT_FOUND') throw new Error('demo: not available in this build (dist/demo/demo.js is missing)');
        throw err;
      }
      if (typeof mod.runDemo !== 'function') throw new Error('demo: dist/demo/demo.js does not export runDemo()');
      await mod.runDemo(args);
    });
}
