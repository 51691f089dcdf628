import { describe, expect, it } from 'vitest';
import { redirectUriMatches, redirectUriProblem } from '../../src/features/clients/redirect-uris.js';

describe('redirect URIs of registered clients', () => {
  it.each([
    'https://app.example.com/callback',
    'https://app.example.com/cb?tenant=a',
    'https://app.example.com:8443/cb',
    'http://127.0.0.1/callback',
    'http://127.0.0.1:51004/oauth2redirect/example-provider',
    'http://[::1]/cb',
    'com.example.app:/oauth2redirect/example-provider',
    'com.example.app://callback',
  ])('accepts %s', (uri) => {
    expect(redirectUriProblem(uri)).toBeNull();
  });

  it.each([
    ['', /empty/],
    ['https://app.example.com/cb#frag', /fragment/],
    ['https://app.example.com/cb#', /fragment/],
    ['https://*.example.com/cb', /wildcard/],
    ['https://app.example.com/*', /wildcard/],
    ['http://localhost:3000/cb', /localhost/],
    ['http://localhost/cb', /localhost/],
    ['http://app.example.com/cb', /plain http/],
    ['http://10.0.0.1/cb', /plain http/],
    ['https://user:pw@app.example.com/cb', /user info/],
    ['https://App.Example.com/cb', /canonical/],
    ['https://app.example.com', /canonical/],
    ['https://app.example.com/a/../cb', /canonical/],
    ['javascript:alert(1)', /scheme/],
    ['data:text/html,hi', /scheme/],
    ['file:///etc/passwd', /scheme/],
    ['myapp:/cb', /reverse domain/],
    ['/relative/cb', /absolute/],
    ['https://app.example.com/c b', /whitespace/],
    ['https://app.example.com\\@evil.com/', /backslash/],
    [`https://app.example.com/${'a'.repeat(2100)}`, /longer/],
  ])('refuses %s', (uri, why) => {
    expect(redirectUriProblem(uri)).toMatch(why);
  });

  it('matches exactly: no prefix, no case folding, no trailing slash, no normalisation', () => {
    const registered = ['https://app.example.com/cb', 'com.example.app:/cb'];
    expect(redirectUriMatches(registered, 'https://app.example.com/cb')).toBe(true);
    expect(redirectUriMatches(registered, 'com.example.app:/cb')).toBe(true);
    for (const p of [
      'https://app.example.com/cb/',
      'https://app.example.com/cb?x=1',
      'https://APP.example.com/cb',
      'https://app.example.com/cb/../cb',
      'https://app.example.com:443/cb',
      'https://app.example.com/cbx',
      'https://app.example.com/cb#x',
    ]) {
      expect(redirectUriMatches(registered, p), p).toBe(false);
    }
  });

  it('a loopback IP literal matches on any port (RFC 8252 §7.3), with the same path and query only', () => {
    const registered = ['http://127.0.0.1/cb', 'http://[::1]:8080/native'];
    expect(redirectUriMatches(registered, 'http://127.0.0.1:50123/cb')).toBe(true);
    expect(redirectUriMatches(registered, 'http://127.0.0.1/cb')).toBe(true);
    expect(redirectUriMatches(registered, 'http://[::1]:1234/native')).toBe(true);
    expect(redirectUriMatches(registered, 'http://127.0.0.1:50123/cb2')).toBe(false);
    expect(redirectUriMatches(registered, 'http://127.0.0.1:50123/cb?x=1')).toBe(false);
    expect(redirectUriMatches(registered, 'http://localhost:50123/cb')).toBe(false);
    expect(redirectUriMatches(registered, 'http://127.0.0.2:50123/cb')).toBe(false);
    expect(redirectUriMatches(registered, 'https://127.0.0.1:50123/cb')).toBe(false);
    expect(redirectUriMatches(registered, 'http://127.0.0.1:50123/x/../cb')).toBe(false);
  });

  it('the port is ignored only for loopback literals, never for https hosts', () => {
    expect(redirectUriMatches(['https://app.example.com/cb'], 'https://app.example.com:8443/cb')).toBe(false);
  });
});
