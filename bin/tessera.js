#!/usr/bin/env node
// The `tessera` command. The TypeScript is compiled to dist/ by `npm install` (prepare) or `npm run build`.
import { existsSync } from 'node:fs';
const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('tessera: dist/ is missing; run `npm run build` first.');
  process.exit(1);
}
await import(entry.href);
