// Bundles the CLI (and commander) into dist/cli/main.js so a command loads one file, not dozens:
// ~20 ms less on every `weft` call. The agent, the lab and the stream decoder stay separate
// modules from tsc's output, loaded only by the commands that need them.
//
// Then builds dist/cli/weft.blob, a V8 startup snapshot of the CLI (see src/cli/snapshot.ts):
// another ~20 ms less. bin/weft falls back to dist/cli/main.js when the blob is missing.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };

await build({
  ...common,
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli/main.js',
  allowOverwrite: true,
  format: 'esm',
  sourcemap: true,
  external: ['../agent/index.js', '../lab/index.js', '../api/frames.js'],
  // commander is CommonJS: give the ESM bundle a require
  banner: { js: "import { createRequire as __weftRequire } from 'node:module'; const require = __weftRequire(import.meta.url);" },
});

const snapshotJs = fileURLToPath(new URL('../dist/cli/snapshot.cjs', import.meta.url));
const blob = fileURLToPath(new URL('../dist/cli/weft.blob', import.meta.url));
await build({
  ...common,
  entryPoints: ['src/cli/snapshot.ts'],
  outfile: snapshotJs,
  format: 'cjs',
  // the agent and the lab are never reached from the snapshot (bin/weft runs them from main.js)
  external: ['../agent/index.js', '../lab/index.js'],
  // CommonJS has no import.meta: the snapshot reads package.json relative to dist/cli/main.js
  define: { 'import.meta.url': JSON.stringify(pathToFileURL(fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))).href) },
});
rmSync(blob, { force: true });
// node warns that child_process and http are "not yet fully verified" in snapshots: the bundle
// only references them; they are fetched at run time.
execFileSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', snapshotJs], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
rmSync(snapshotJs);
