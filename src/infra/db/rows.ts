/**
 * The row an `INSERT … RETURNING` (without ON CONFLICT) wrote. PostgreSQL always returns it;
 * its absence is a driver or schema fault, never an outcome to handle.
 */
export function insertedRow<T>(rows: readonly T[], table: string): T {
  const [row] = rows;
  if (row === undefined) throw new Error(`INSERT INTO ${table} … RETURNING returned no row`);
  return row;
}
