import { accessSync, constants } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from './config/index.js';
import { SetupError } from './fatal.js';
import { createAuditService } from './features/audit/service.js';
import { readFastapiUsers } from './features/import/fastapi-source.js';
import { CsvError } from './features/import/csv.js';
import { readFileUsers } from './features/import/file-source.js';
import type { SourceUser } from './features/import/record.js';
import { createImportService, type ImportSummary } from './features/import/service.js';
import { createRbacService } from './features/rbac/service.js';
import { systemClock } from './infra/clock.js';
import { migrateDatabase } from './migrate.js';
import { openConfiguredDatabase } from './runtime.js';

// `tessera import fastapi-auth | csv | jsonl`: users from another system (docs/import.md).
// Conflicts go to stdout as they are found, progress to stderr; exit 1 when there were conflicts.

const BATCH_SIZE = 1000;

function describe(s: ImportSummary, dryRun: boolean): string[] {
  const would = dryRun ? ' (dry run: nothing was written)' : '';
  return [
    `tessera: read ${s.read}, ${dryRun ? 'would import' : 'imported'} ${s.imported}, skipped (already present) ${s.alreadyPresent}, conflicts ${s.conflicts}${would}`,
    ...(s.mustProveAddress
      ? [
          `tessera: ${s.mustProveAddress} imported account${s.mustProveAddress === 1 ? ' has' : 's have'} no password and an unconfirmed address (social sign-ins of the source, or rows without a hash):` +
            ' they sign in after proving the address (POST /auth/password/forgot, or /auth/confirm-email/resend), then may connect their provider; no provider identity was linked',
        ]
      : []),
    ...(s.conflicts ? ['tessera: the conflicts above were not imported; resolve them and run the import again (what is imported stays as it is)'] : []),
  ];
}

async function runImport(batches: AsyncIterable<SourceUser[]>, source: string, dryRun: boolean): Promise<number> {
  const config = { ...loadConfig(), logLevel: 'error' };
  const database = await openConfiguredDatabase(config);
  try {
    await migrateDatabase(database, (line) => console.warn(`tessera: ${line}`));
    const db = database.db;
    const service = createImportService({
      db,
      clock: systemClock,
      rbac: createRbacService({ db, clock: systemClock, defaultRole: config.defaultRole }),
      audit: createAuditService({ db, clock: systemClock }),
    });
    const started = Date.now();
    const summary = await service.run(batches, {
      source,
      dryRun,
      onConflict: (c) => console.log(`conflict: ${c.sourceRef} ${JSON.stringify(c.email)}: ${c.reason}`),
      onBatch: (s) =>
        process.stderr.write(`tessera: ${s.read} rows read (up to ${s.lastSourceRef ?? '-'}), ${s.imported} ${dryRun ? 'to import' : 'imported'}\n`),
    });
    for (const line of describe(summary, dryRun)) console.log(line);
    const seconds = (Date.now() - started) / 1000;
    process.stderr.write(`tessera: ${seconds.toFixed(1)} s, ${Math.round(summary.read / Math.max(seconds, 0.001))} rows/s\n`);
    return summary.conflicts ? 1 : 0;
  } finally {
    await database.close();
  }
}

const batchSize = (v: string | undefined): number => {
  const n = v === undefined ? BATCH_SIZE : Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 5000) throw new SetupError('--batch-size takes a whole number from 1 to 5000');
  return n;
};

/** `import fastapi-auth --from URL [--dry-run] [--batch-size N] [--after-id N]`, `import csv|jsonl FILE [--dry-run]`. */
export async function importCommand(kind: string | undefined, args: string[]): Promise<number> {
  if (kind === 'fastapi-auth') {
    const { values } = parseArgs({
      args,
      options: { from: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'batch-size': { type: 'string' }, 'after-id': { type: 'string' } },
    });
    if (!values.from) throw new SetupError("import fastapi-auth needs --from postgres://… (the FastAPI service's database)");
    const after = Number(values['after-id'] ?? 0);
    if (!Number.isInteger(after) || after < 0) throw new SetupError('--after-id takes a source id (a whole number), as the progress lines print it');
    return runImport(readFastapiUsers(values.from, batchSize(values['batch-size']), after), 'fastapi-auth', values['dry-run'] === true);
  }
  if (kind === 'csv' || kind === 'jsonl') {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'dry-run': { type: 'boolean' }, 'batch-size': { type: 'string' } } });
    const [file, ...more] = positionals;
    if (!file || more.length) throw new SetupError(`import ${kind} takes one FILE`);
    try {
      accessSync(file, constants.R_OK);
    } catch {
      throw new SetupError(`cannot read ${file}`);
    }
    try {
      return await runImport(readFileUsers(kind, file, batchSize(values['batch-size'])), kind, values['dry-run'] === true);
    } catch (err) {
      // The file cannot be read as a whole: say where and why (batches before it were imported; a re-run skips them).
      if (err instanceof CsvError) throw new SetupError(`${file}: ${err.message}`);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SetupError(`${file} does not exist`);
      throw err;
    }
  }
  throw new SetupError('import takes a source: fastapi-auth --from URL, csv FILE or jsonl FILE');
}
