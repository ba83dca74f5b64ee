#!/usr/bin/env node
// Entry point: the CLI is bundled into dist/cli/ by `npm ci` (the `prepare` script runs `npm run build`).
import { main } from '../dist/cli/cairn.js';

process.exitCode = await main(process.argv.slice(2));
