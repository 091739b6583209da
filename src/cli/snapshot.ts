/**
 * The entry of the CLI's V8 startup snapshot. scripts/bundle-cli.mjs bundles this file as
 * CommonJS and runs `node --build-snapshot` on it, giving dist/cli/weft.blob: the CLI's modules
 * already loaded and compiled, which saves ~20 ms on every `weft` call. bin/weft starts node from
 * the blob for every command but `agent` and `lab` (they import the agent and lab modules at
 * run time, which a snapshot cannot do on Node 20) and when the blob is older than node itself.
 *
 * Rules for code reachable from here: no top-level await, no dynamic import() of anything the
 * bundle does not inline, and node:http and node:readline fetched with process.getBuiltinModule
 * when first used (they cannot be in a snapshot on Node 20).
 */
import { startupSnapshot } from 'node:v8';
import { cliVersion } from './context.js';
import { runProcess } from './main.js';

cliVersion(); // read package.json now, while building the snapshot
startupSnapshot.setDeserializeMainFunction(() => runProcess(process.argv.slice(1)));
