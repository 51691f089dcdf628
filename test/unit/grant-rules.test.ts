import { describe, expect, it } from 'vitest';
import { mayHandOut, mayManage, notHeld, permits } from '../../src/features/rbac/grant-rules.js';

const grants = (roles: string[], permissions: string[]) => ({ roles, permissions });

describe('grant rules', () => {
  it('permits: exact, `*`, and `resource:*` covering its resource only', () => {
    expect(permits(['*'], '*')).toBe(true);
    expect(permits(['orders:*'], 'orders:refund')).toBe(true);
    expect(permits(['orders:*'], 'orders:*')).toBe(true);
    expect(permits(['orders:*'], '*')).toBe(false);
    expect(permits(['orders:*'], 'ordersx:refund')).toBe(false);
    expect(permits(['orders:refund'], 'orders:*')).toBe(false);
    expect(notHeld(grants([], ['users:write', 'orders:*']), ['users:write', 'orders:refund', 'roles:write', '*'])).toEqual(['roles:write', '*']);
  });

  it('mayHandOut: every permission of the role held; admin only by an admin', () => {
    const clerk = grants(['clerk'], ['users:write', 'orders:refund']);
    expect(mayHandOut(clerk, { name: 'refunds', permissions: ['orders:refund'] })).toBe(true);
    expect(mayHandOut(clerk, { name: 'orders', permissions: ['orders:*'] })).toBe(false);
    expect(mayHandOut(clerk, { name: 'user', permissions: [] })).toBe(true);
    // A non-admin holding `*` still cannot give the admin role.
    expect(mayHandOut(grants(['super'], ['*']), { name: 'admin', permissions: ['*'] })).toBe(false);
    expect(mayHandOut(grants(['admin'], ['*']), { name: 'admin', permissions: ['*'] })).toBe(true);
  });

  it('mayManage: the target holds nothing the actor does not; an admin only by an admin', () => {
    const helpdesk = grants(['helpdesk', 'user'], ['users:read', 'users:write']);
    expect(mayManage(helpdesk, grants(['user'], []))).toBe(true);
    expect(mayManage(helpdesk, grants(['auditor'], ['audit:read']))).toBe(false);
    expect(mayManage(helpdesk, grants(['admin'], []))).toBe(false);
    expect(mayManage(grants(['admin'], ['*']), grants(['admin', 'x'], ['*', 'a:b']))).toBe(true);
  });
});
