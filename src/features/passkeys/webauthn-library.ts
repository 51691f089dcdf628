/**
 * @simplewebauthn/server, loaded at the first passkey ceremony instead of at every start: its
 * modules (ASN.1, CBOR, COSE, attestation formats) take about half a second to load on a busy
 * 2-core machine, most of a worker's start-up (`npm run bench -- --only restart`).
 */
import type * as Server from '@simplewebauthn/server';
import type * as Helpers from '@simplewebauthn/server/helpers';

let server: Promise<typeof Server> | undefined;
let helpers: Promise<typeof Helpers> | undefined;
const lib = () => (server ??= import('@simplewebauthn/server'));

export const generateRegistrationOptions: typeof Server.generateRegistrationOptions = async (options) => (await lib()).generateRegistrationOptions(options);
export const verifyRegistrationResponse: typeof Server.verifyRegistrationResponse = async (options) => (await lib()).verifyRegistrationResponse(options);
export const generateAuthenticationOptions: typeof Server.generateAuthenticationOptions = async (options) =>
  (await lib()).generateAuthenticationOptions(options);
export const verifyAuthenticationResponse: typeof Server.verifyAuthenticationResponse = async (options) => (await lib()).verifyAuthenticationResponse(options);

/** The library's clientDataJSON decoder. */
export async function decodeClientDataJSON(data: string): Promise<ReturnType<typeof Helpers.decodeClientDataJSON>> {
  return (await (helpers ??= import('@simplewebauthn/server/helpers'))).decodeClientDataJSON(data);
}
