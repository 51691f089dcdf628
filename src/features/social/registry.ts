/**
 * The providers that are configured, by id. A provider exists only when its
 * variables are set (config/social.ts); GET /auth/providers lists exactly these.
 */
import type { SocialConfig } from '../../config/index.js';
import type { Clock } from '../../infra/clock.js';
import type { Provider } from './provider.js';
import { createAppleProvider } from './providers/apple.js';
import { createFacebookProvider } from './providers/facebook.js';
import { createGithubProvider } from './providers/github.js';
import { createGoogleProvider } from './providers/google.js';
import { createOidcProvider } from './providers/oidc.js';

export interface ProviderRegistry {
  /** The enabled provider with this id, or null. */
  get(id: string): Provider | null;
  /** Every enabled provider, in a stable order (built-ins first, then OIDC_PROVIDERS in their order). */
  list(): Provider[];
}

export function createProviderRegistry(social: SocialConfig, clock: Clock): ProviderRegistry {
  const http = { timeoutMs: social.httpTimeoutMs };
  const providers: Provider[] = [];
  if (social.google) providers.push(createGoogleProvider(social.google, http, clock));
  if (social.apple) providers.push(createAppleProvider(social.apple, http, clock));
  if (social.github) providers.push(createGithubProvider(social.github, http));
  if (social.facebook) providers.push(createFacebookProvider(social.facebook, http));
  for (const generic of social.oidc) providers.push(createOidcProvider(generic, http, clock));
  const byId = new Map(providers.map((p) => [p.id, p]));
  return {
    get: (id) => byId.get(id) ?? null,
    list: () => [...providers],
  };
}
