import { expect } from 'vitest';

/** The error `promise` rejects with, checked to be a `type`; fails the test when it resolves or rejects with something else. */
export async function rejectionOf<T extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  return err as T;
}
