import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { OAuth2ProviderConfig } from '../../src/config/index.js';
import { freePort } from './free-port.js';

/** One request the fake server received. */
export interface RecordedRequest {
  method: string;
  /** Absolute URL as received (path and query). */
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface FakeReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Where a 302 goes. */
  location?: string;
}

/** A canned answer for a path: a reply, or 'hang' (accept the request and never answer). */
export type Override = FakeReply | 'hang';

export type Route = (req: RecordedRequest) => FakeReply | Promise<FakeReply>;

/**
 * A small HTTP server on a free loopback port for tests that stand in for a
 * third-party API. Records every request; `override(path, …)` replaces the
 * answer for a path (a status and body, or 'hang' to never answer) until
 * `clearOverrides()`.
 */
export class FakeHttpServer {
  readonly requests: RecordedRequest[] = [];
  private readonly overrides = new Map<string, Override>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly base: string,
  ) {}

  static async start(route: Route): Promise<FakeHttpServer> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    let fake: FakeHttpServer | null = null;
    const server = createServer((req, res) => void fake?.handle(req, res, route));
    fake = new FakeHttpServer(server, base);
    server.on('connection', (s) => {
      fake.sockets.add(s);
      s.on('close', () => fake.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  override(path: string, answer: Override): void {
    this.overrides.set(path, answer);
  }

  clearOverrides(): void {
    this.overrides.clear();
  }

  /** The recorded requests to one path. */
  to(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.url.pathname === path);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      url: new URL(req.url ?? '/', this.base),
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    };
    this.requests.push(recorded);
    const override = this.overrides.get(recorded.url.pathname);
    if (override === 'hang') return;
    let reply: FakeReply;
    try {
      reply = override ?? (await route(recorded));
    } catch (err) {
      reply = { status: 500, body: { message: String(err) } };
    }
    const headers: Record<string, string> = { ...reply.headers };
    if (reply.location) headers.location = reply.location;
    if (reply.body !== undefined) headers['content-type'] ??= 'application/json; charset=utf-8';
    res.writeHead(reply.status, headers);
    res.end(reply.body === undefined ? undefined : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
  }
}

/** The RFC 7636 S256 challenge of a verifier. */
export const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/** The `<PREFIX>_*` variables that point Tessera at a fake OAuth2 provider. */
export const oauth2Env = (prefix: string, c: OAuth2ProviderConfig): Record<string, string> => ({
  [`${prefix}_CLIENT_ID`]: c.clientId,
  [`${prefix}_CLIENT_SECRET`]: c.clientSecret,
  [`${prefix}_AUTHORIZATION_URL`]: c.authorizationUrl,
  [`${prefix}_TOKEN_URL`]: c.tokenUrl,
  [`${prefix}_API_URL`]: c.apiUrl,
});
