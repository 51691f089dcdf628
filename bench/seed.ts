import { randomBytes } from 'node:crypto';
import { postJson, type JsonResponse } from './http.js';

export interface SeedUser {
  email: string;
  password: string;
}

export interface SeedSession {
  accessToken: string;
  refreshToken: string;
}

interface TokenBody {
  access_token: string;
  refresh_token: string;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function pooled<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** POSTs `body`; a 503 (a hash that would wait too long on a loaded machine) is retried after its Retry-After, up to 10 times. */
async function postPatiently(url: string, body: unknown): Promise<JsonResponse> {
  for (let attempt = 0; ; attempt++) {
    const res = await postJson(url, body);
    if (res.status !== 503 || attempt >= 10) return res;
    await new Promise((r) => setTimeout(r, 1000 * (res.retryAfter ?? 1)));
  }
}

/** Registers `count` users through POST /auth/register (one bcrypt hash each). */
export async function registerUsers(baseUrl: string, count: number, concurrency: number): Promise<SeedUser[]> {
  const run = randomBytes(4).toString('hex');
  const users = Array.from({ length: count }, (_, i) => ({
    email: `bench-${run}-${i}@example.com`,
    password: `Bench-${run}-${randomBytes(6).toString('hex')}`,
  }));
  await pooled(users, concurrency, async (u) => {
    const res = await postPatiently(`${baseUrl}/auth/register`, { email: u.email, password: u.password });
    if (res.status !== 201) throw new Error(`POST /auth/register answered ${res.status}: ${JSON.stringify(res.body)}`);
  });
  return users;
}

/** Opens one session per user through POST /auth/login. */
export function openSessions(baseUrl: string, users: SeedUser[], concurrency: number): Promise<SeedSession[]> {
  return pooled(users, concurrency, async (u) => {
    const res = await postPatiently(`${baseUrl}/auth/login`, { email: u.email, password: u.password });
    if (res.status !== 200) throw new Error(`POST /auth/login answered ${res.status}: ${JSON.stringify(res.body)}`);
    const body = res.body as TokenBody;
    return { accessToken: body.access_token, refreshToken: body.refresh_token };
  });
}
