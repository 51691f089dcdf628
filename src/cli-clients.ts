import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Services } from './composition/services.js';
import type { Config } from './config/index.js';
import { SetupError } from './fatal.js';
import { toClientBody, toClientInput } from './features/clients/routes.js';
import { MAX_OVERLAP_SECONDS, type ClientInput } from './features/clients/service.js';

export type WithServices = <T>(fn: (services: Services, config: Config) => Promise<T>) => Promise<T>;

const DURATION = /^(\d+)\s*([smhd]?)$/i;
const UNIT = { '': 1, s: 1, m: 60, h: 3600, d: 86400 } as const;

function seconds(v: string, name: string): number {
  const m = DURATION.exec(v.trim());
  if (!m) throw new SetupError(`${name} takes a duration such as 0, 90s, 30m, 24h or 7d, got "${v}"`);
  return Number(m[1]) * UNIT[(m[2] ?? '').toLowerCase() as keyof typeof UNIT];
}

function integer(v: string, name: string): number {
  if (!/^\d+$/.test(v)) throw new SetupError(`${name} takes a whole number, got "${v}"`);
  return Number(v);
}

const print = (json: boolean, value: unknown, text: () => string) => console.log(json ? JSON.stringify(value, null, 2) : text());

const OPTIONS = {
  name: { type: 'string' },
  type: { type: 'string' },
  'auth-method': { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  grant: { type: 'string', multiple: true },
  scope: { type: 'string', multiple: true },
  'first-party': { type: 'boolean' },
  'access-token-ttl': { type: 'string' },
  'refresh-token-days': { type: 'string' },
  'jwks-file': { type: 'string' },
  'jwks-uri': { type: 'string' },
  'backchannel-logout-uri': { type: 'string' },
  overlap: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function readJwks(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new SetupError(`--jwks-file: cannot read a JSON JWK Set from ${file} (${(err as Error).message})`);
  }
}

function describe(c: ReturnType<typeof toClientBody>): string {
  const lines = [
    `client_id: ${c.client_id}`,
    `name: ${c.name}`,
    `type: ${c.type} (${c.token_endpoint_auth_method})${c.first_party ? ', first-party' : ''}`,
    `grants: ${c.grant_types.join(' ')}`,
    `scopes: ${c.scopes.join(' ')}`,
    `redirect URIs: ${c.redirect_uris.join(' ') || '-'}`,
    `post-logout redirect URIs: ${c.post_logout_redirect_uris.join(' ') || '-'}`,
  ];
  if (c.access_token_seconds !== null) lines.push(`access token lifetime: ${c.access_token_seconds}s`);
  if (c.refresh_token_days !== null) lines.push(`refresh token lifetime: ${c.refresh_token_days}d`);
  if (c.jwks_uri) lines.push(`jwks_uri: ${c.jwks_uri}`);
  if (c.jwks) lines.push(`jwks: ${c.jwks.keys.length} key(s)`);
  if (c.backchannel_logout_uri) lines.push(`back-channel logout: ${c.backchannel_logout_uri}`);
  for (const s of c.secrets ?? []) lines.push(`secret created ${s.created_at}${s.expires_at ? `, valid until ${s.expires_at}` : ' (current)'}`);
  return lines.join('\n');
}

const secretNotice = (secret: string) => `client_secret: ${secret}\nThis is the only time the secret is shown: store it now (Tessera keeps only its SHA-256).`;

/** `tessera clients create|list|show|rotate-secret|delete` (docs/clients.md). */
export async function clientsCommand(sub: string | undefined, args: string[], withServices: WithServices): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true });
  const json = values.json === true;
  const id = positionals[0];
  if (sub === 'create') {
    if (!values.name || !values.type) throw new SetupError('clients create needs --name and --type public|confidential');
    const input: ClientInput = {
      name: values.name,
      type: values.type as ClientInput['type'],
      ...toClientInput({
        ...(values['auth-method'] ? { token_endpoint_auth_method: values['auth-method'] as NonNullable<ClientInput['tokenEndpointAuthMethod']> } : {}),
        ...(values['redirect-uri'] ? { redirect_uris: values['redirect-uri'] } : {}),
        ...(values['post-logout-redirect-uri'] ? { post_logout_redirect_uris: values['post-logout-redirect-uri'] } : {}),
        ...(values.grant ? { grant_types: values.grant.flatMap((g) => g.split(/[\s,]+/).filter(Boolean)) } : {}),
        ...(values.scope ? { scopes: values.scope.flatMap((s) => s.split(/[\s,]+/).filter(Boolean)) } : {}),
        ...(values['first-party'] ? { first_party: true } : {}),
        ...(values['access-token-ttl'] ? { access_token_seconds: seconds(values['access-token-ttl'], '--access-token-ttl') } : {}),
        ...(values['refresh-token-days'] ? { refresh_token_days: integer(values['refresh-token-days'], '--refresh-token-days') } : {}),
        ...(values['jwks-uri'] ? { jwks_uri: values['jwks-uri'] } : {}),
        ...(values['backchannel-logout-uri'] ? { backchannel_logout_uri: values['backchannel-logout-uri'] } : {}),
      }),
      ...(values['jwks-file'] ? { jwks: readJwks(values['jwks-file']) } : {}),
    };
    const { client, secret } = await withServices(({ clients }) => clients.create(null, input));
    const body = toClientBody(client);
    print(
      json,
      { client: body, client_secret: secret },
      () => `tessera: registered ${body.name}\n${describe(body)}${secret ? `\n${secretNotice(secret)}` : ''}`,
    );
    return 0;
  }
  if (sub === 'list') {
    const list = (await withServices(({ clients }) => clients.list())).map(toClientBody);
    print(json, { clients: list }, () =>
      list.length
        ? list.map((c) => `${c.client_id}\t${c.type}\t${c.token_endpoint_auth_method}\t${c.grant_types.join(',')}\t${c.name}`).join('\n')
        : 'tessera: no clients registered',
    );
    return 0;
  }
  if (!id) throw new SetupError(`clients ${sub ?? ''} needs a CLIENT_ID (tessera clients list shows them)`);
  if (sub === 'show') {
    const body = toClientBody(await withServices(({ clients }) => clients.get(id)));
    print(json, body, () => describe(body));
    return 0;
  }
  if (sub === 'rotate-secret') {
    const overlap = values.overlap ? seconds(values.overlap, '--overlap') : 0;
    if (overlap > MAX_OVERLAP_SECONDS) throw new SetupError(`--overlap is at most ${MAX_OVERLAP_SECONDS / 86400}d`);
    const r = await withServices(({ clients }) => clients.rotateSecret(null, id, overlap));
    const until = r.previousValidUntil?.toISOString() ?? null;
    print(
      json,
      { client_id: id, client_secret: r.secret, previous_secret_valid_until: until },
      () => `${secretNotice(r.secret)}\n${until ? `The previous secret keeps working until ${until}.` : 'The previous secret no longer works.'}`,
    );
    return 0;
  }
  if (sub === 'delete') {
    await withServices(({ clients }) => clients.delete(null, id));
    print(json, { client_id: id, deleted: true }, () => `tessera: deleted the client ${id}; its secrets are gone and its sessions ended`);
    return 0;
  }
  throw new SetupError(`unknown clients command "${sub ?? ''}": create, list, show, rotate-secret or delete`);
}
