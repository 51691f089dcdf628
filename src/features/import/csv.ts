/** A CSV file that cannot be read as records (RFC 4180), with the line it went wrong on. */
export class CsvError extends Error {
  override name = 'CsvError';
}

/** One record and the line it starts on (1-based; a quoted field may span several lines). */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/**
 * RFC 4180 records from text chunks, streamed: fields separated by commas, records by
 * LF or CRLF; a field in double quotes may hold commas, line breaks and `""` (one quote).
 * A quote inside an unquoted field, text after a closing quote, or a quote left open at
 * the end is a CsvError (never a guess). A leading BOM is dropped; blank lines are skipped.
 */
export async function* parseCsv(chunks: AsyncIterable<string> | Iterable<string>): AsyncGenerator<CsvRecord> {
  let fields: string[] = [];
  let field = '';
  // 'start': at the start of a field; 'plain': inside an unquoted one; 'quoted': inside quotes; 'closed': just after a closing quote.
  let state: 'start' | 'plain' | 'quoted' | 'closed' = 'start';
  let line = 1;
  let recordLine = 1;
  let first = true;
  let pendingCr = false;
  const endRecord = (): CsvRecord | null => {
    fields.push(field);
    const done = fields.length === 1 && fields[0] === '' && state === 'start' ? null : { line: recordLine, fields };
    fields = [];
    field = '';
    state = 'start';
    return done;
  };
  for await (let chunk of chunks) {
    if (first) {
      if (chunk.startsWith('\uFEFF')) chunk = chunk.slice(1);
      first = chunk === '';
    }
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charAt(i);
      if (pendingCr) {
        pendingCr = false;
        if (c !== '\n') throw new CsvError(`line ${line}: a carriage return outside quotes must end the line (CRLF)`);
      }
      if (state === 'quoted') {
        if (c === '"') state = 'closed';
        else {
          if (c === '\n') line++;
          field += c;
        }
        continue;
      }
      if (state === 'closed' && c === '"') {
        // "" inside quotes: one quote.
        field += '"';
        state = 'quoted';
        continue;
      }
      if (c === ',') {
        fields.push(field);
        field = '';
        state = 'start';
      } else if (c === '\r') {
        pendingCr = true;
      } else if (c === '\n') {
        const rec = endRecord();
        line++;
        recordLine = line;
        if (rec) yield rec;
      } else if (state === 'closed') {
        throw new CsvError(`line ${line}: text after a closing quote (a field is either all in quotes or has none)`);
      } else if (c === '"') {
        if (state === 'plain') throw new CsvError(`line ${line}: a quote inside an unquoted field (put the field in quotes and double the quote)`);
        state = 'quoted';
      } else {
        field += c;
        state = 'plain';
      }
    }
  }
  if (pendingCr) throw new CsvError(`line ${line}: a carriage return outside quotes must end the line (CRLF)`);
  if (state === 'quoted') throw new CsvError(`line ${recordLine}: a quoted field is not closed at the end of the file`);
  const rec = endRecord();
  if (rec) yield rec;
}
