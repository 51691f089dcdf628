/** A PostgreSQL URL without its password, fit for a message or a log line. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '';
    u.search = '';
    return u.toString().replace(/^(\w+:\/\/[^:@/]+):@/, '$1@');
  } catch {
    // never echo an unparseable URL: it may hold a password
    return '(an unparseable URL)';
  }
}

const networkCauses: Record<string, string> = {
  ECONNREFUSED: 'connection refused (ECONNREFUSED): is PostgreSQL running, on this host and port?',
  ENOTFOUND: 'host not found (ENOTFOUND): check the host name',
  EAI_AGAIN: 'host name lookup failed (EAI_AGAIN): check the host name and DNS',
  ETIMEDOUT: 'connection timed out (ETIMEDOUT): a firewall, or the wrong host?',
  EHOSTUNREACH: 'host unreachable (EHOSTUNREACH)',
  ECONNRESET: 'the connection was reset (ECONNRESET): does the server expect TLS (?sslmode=require)?',
};

const sqlStateCauses: Record<string, (message: string) => string> = {
  '3D000': (m) => `${m} (create it, or fix the database name)`,
  '28P01': (m) => `${m} (check the user and password)`,
  '28000': (m) => `${m} (pg_hba.conf refuses this user, host or database)`,
  '53300': (m) => `${m} (too many connections)`,
  '57P03': (m) => `${m} (the server is starting up or shutting down)`,
};

/**
 * Why a first connection to PostgreSQL failed, in one short phrase (the cause a
 * person can act on, not the driver's stack); null when it is not a connection problem.
 */
export function describeConnectFailure(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    const raw = (e as { message?: unknown }).message;
    const message = typeof raw === 'string' ? raw : '';
    if (typeof code === 'string' && networkCauses[code]) return networkCauses[code];
    if (typeof code === 'string' && sqlStateCauses[code]) return sqlStateCauses[code](message);
    // Node 20 tries every address of `localhost`: the refusals come as an AggregateError.
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length) {
      const d = describeConnectFailure(inner[0]);
      if (d) return d;
    }
    if (/timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(message))
      return 'connection timed out (DB_CONNECT_TIMEOUT_MS): a firewall, or the wrong host?';
    if (/self[- ]signed certificate|certificate|SSL/i.test(message)) return `TLS failed: ${message}`;
  }
  return null;
}
