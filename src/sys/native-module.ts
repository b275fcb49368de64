// Loading our optional Node-API modules (native/*.c, built by scripts/build-native.sh into
// native/build/). Each is an optimization with a plain fallback, so a module that is missing, built
// for another Node ABI, or switched off by its environment variable is simply not used.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where scripts/build-native.sh puts native/build/NAME.node (the same from src/sys and dist/sys). */
export function nativeModulePath(name: string): string {
  return fileURLToPath(new URL(`../../native/build/${name}.node`, import.meta.url));
}

const loaded = new Map<string, unknown>();

/**
 * native/build/NAME.node, loaded once; null when it is not there, does not load, or `offSwitch` (an
 * environment variable) is set to 1. Loaded with require: these are CommonJS addons.
 */
export function loadNativeModule<T>(name: string, offSwitch?: string): T | null {
  if (!loaded.has(name)) {
    let module: T | null = null;
    const path = nativeModulePath(name);
    if ((offSwitch === undefined || process.env[offSwitch] !== '1') && process.platform === 'linux' && existsSync(path)) {
      try {
        module = createRequire(import.meta.url)(path) as T;
      } catch {
        module = null; // e.g. built for another Node ABI
      }
    }
    loaded.set(name, module);
  }
  return loaded.get(name) as T | null;
}
