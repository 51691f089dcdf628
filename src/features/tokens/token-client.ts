import type { FastifyRequest } from 'fastify';

/** The registered client of a token request, as the token endpoint needs it (the clients feature authenticates it). */
export interface TokenClient {
  clientId: string;
  firstParty: boolean;
  grantTypes: string[];
  accessTokenSeconds: number | null;
  refreshTokenDays: number | null;
}

/** The members of a token request that authenticate its client. */
export interface ClientAuthFields {
  client_id?: string | undefined;
  client_secret?: string | undefined;
  client_assertion?: string | undefined;
  client_assertion_type?: string | undefined;
}

/** Authenticates the client a token request names: null when it names none (the implicit first-party client); throws `invalid_client`. */
export type ClientAuthenticator = (request: FastifyRequest, body: ClientAuthFields) => Promise<TokenClient | null>;
