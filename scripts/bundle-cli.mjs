// Bundles the CLI (and commander) into dist/cli/main.js so a command loads one file, not dozens:
// ~20 ms less on every `weft` call. The agent, the lab and the stream decoder stay separate
// modules from tsc's output, loaded only by the commands that need them.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli/main.js',
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  external: ['../agent/index.js', '../lab/index.js', '../api/frames.js'],
  // commander is CommonJS: give the ESM bundle a require
  banner: { js: "import { createRequire as __weftRequire } from 'node:module'; const require = __weftRequire(import.meta.url);" },
  logLevel: 'warning',
});
