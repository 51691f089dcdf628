/** The clients allowed to call POST /auth/introspect (RFC 7662); none = the endpoint is off. */
import { readFileSync } from 'node:fs';
import { list, type Reader } from './reader.js';

export interface IntrospectionClient {
  id: string;
  secret: string;
}

const CLIENT_ID = /^[A-Za-z0-9._~-]{1,64}$/;
export const MIN_CLIENT_SECRET_LENGTH = 32;

/**
 * INTROSPECTION_CLIENTS=`id:secret,id:secret` or INTROSPECTION_CLIENTS_FILE (one
 * `id:secret` per line, `#` comments). Secrets are never echoed in errors.
 */
export function introspectionClients(r: Reader): IntrospectionClient[] {
  const inline = r.raw('INTROSPECTION_CLIENTS');
  const file = r.raw('INTROSPECTION_CLIENTS_FILE');
  if (inline && file) {
    r.problems.push('INTROSPECTION_CLIENTS and INTROSPECTION_CLIENTS_FILE are both set; set only one');
    return [];
  }
  let entries: string[] = [];
  let name = 'INTROSPECTION_CLIENTS';
  if (file) {
    name = 'INTROSPECTION_CLIENTS_FILE';
    try {
      entries = readFileSync(file, 'utf8')
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
    } catch (err) {
      r.problems.push(`INTROSPECTION_CLIENTS_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return [];
    }
  } else if (inline) {
    entries = list(inline);
  }
  const clients: IntrospectionClient[] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon === -1 ? entry : entry.slice(0, colon);
    const secret = colon === -1 ? '' : entry.slice(colon + 1);
    const label = CLIENT_ID.test(id) ? `client "${id}"` : `entry ${i + 1}`;
    if (!CLIENT_ID.test(id)) r.problems.push(`${name}: ${label}: expected id:secret with an id of letters, digits and . _ ~ - (at most 64)`);
    else if (secret.length < MIN_CLIENT_SECRET_LENGTH) {
      r.problems.push(`${name}: ${label}: the secret must be at least ${MIN_CLIENT_SECRET_LENGTH} characters (\`openssl rand -base64 32\`)`);
    } else if (clients.some((c) => c.id === id)) r.problems.push(`${name}: client "${id}" is listed twice`);
    else clients.push({ id, secret });
  }
  return clients;
}
