/**
 * The HTTP plumbing the plain-OAuth2 providers (GitHub, Facebook) share: one
 * bounded request (AbortSignal.timeout covers the connection, the headers and
 * the body), its JSON body, and the mapping of transport failures to
 * `ProviderError(…, unavailable = true)`. Error messages name the provider and
 * the endpoint's purpose, never a URL (Facebook URLs carry tokens) or a token.
 */
import { ProviderError } from '../provider.js';

export interface HttpOptions {
  timeoutMs: number;
  fetch?: typeof fetch;
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  /** The parsed body; undefined when it was not JSON. */
  body: unknown;
}

/** Bodies larger than this are not read (no provider answer we use comes close). */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Sends one request and reads its JSON body. Throws ProviderError
 * `provider_timeout` / `provider_unreachable` (unavailable) when the provider
 * does not answer in time or cannot be reached; any HTTP status is returned.
 */
export async function requestJson(opts: HttpOptions, what: string, url: URL | string, init: RequestInit): Promise<JsonResponse> {
  const doFetch = opts.fetch ?? fetch;
  try {
    const res = await doFetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(opts.timeoutMs) });
    const length = Number(res.headers.get('content-length') ?? 0);
    if (length > MAX_BODY_BYTES) {
      // best effort: only frees the socket; the answer is refused below either way
      await res.body?.cancel().catch(() => {});
      throw new ProviderError('bad_response', `${what}: the answer is too large`, true);
    }
    const text = await res.text();
    if (text.length > MAX_BODY_BYTES) throw new ProviderError('bad_response', `${what}: the answer is too large`, true);
    let body: unknown;
    try {
      body = text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      // not JSON: callers get no object and refuse the answer with the status they see
      body = undefined;
    }
    return { status: res.status, headers: res.headers, body };
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    const name = err instanceof Error ? err.name : '';
    if (name === 'TimeoutError' || name === 'AbortError') {
      throw new ProviderError('provider_timeout', `${what}: no answer within ${opts.timeoutMs} ms`, true);
    }
    throw new ProviderError('provider_unreachable', `${what}: the provider could not be reached`, true);
  }
}

/** A plain object (not an array, not null). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A non-empty trimmed string, or null. */
export function text(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t === '' ? null : t;
}

/** "Ada King Lovelace" → first "Ada", last "King Lovelace"; one word → first only. */
export function splitName(name: unknown): { firstName: string | null; lastName: string | null } {
  const full = text(name);
  if (!full) return { firstName: null, lastName: null };
  const parts = full.split(/\s+/);
  const firstName = parts[0] ?? null;
  const lastName = parts.length > 1 ? parts.slice(1).join(' ') : null;
  return { firstName, lastName };
}

/** `base` with these query parameters set (in this order). */
export function withQuery(base: string, params: Record<string, string>): URL {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

/** The provider's scope list from configuration (space or comma separated), without empties or repeats. */
export function scopeList(scopes: string): string[] {
  return [...new Set(scopes.split(/[\s,]+/).filter(Boolean))];
}
