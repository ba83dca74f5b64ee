#!/usr/bin/env node
// Entry point: the engine is compiled to dist/ by `npm ci` (the `prepare` script).
// Source maps make locations in messages point at the TypeScript sources.
process.setSourceMapsEnabled(true);
const { main } = await import('../dist/src/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
