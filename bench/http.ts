import { request } from 'node:http';

export interface JsonResponse {
  status: number;
  body: unknown;
  /** Retry-After in seconds, when sent. */
  retryAfter?: number;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text
  }
  const retryAfter = Number(res.headers.get('retry-after') ?? NaN);
  return { status: res.status, body: parsed, ...(Number.isFinite(retryAfter) ? { retryAfter } : {}) };
}

/**
 * GET over a fresh TCP connection (no keep-alive agent), so that with Node
 * cluster each call is handed to the next worker in round-robin order.
 */
export function getOnNewConnection(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
