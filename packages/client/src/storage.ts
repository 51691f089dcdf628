/**
 * Where the SDK keeps the session (one JSON string under one key). Every method is
 * async so that secure native stores (Keychain, SecureStore, AsyncStorage) fit.
 */
export interface TokenStorage {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<void>;
  remove(key: string): Promise<void>;
}

/** In-memory storage (the default): the session lasts as long as the page or process. Share one instance between clients to share the session. */
export function memoryStorage(): TokenStorage {
  const map = new Map<string, string>();
  return {
    get: async (key) => map.get(key) ?? null,
    set: async (key, value) => {
      map.set(key, value);
    },
    remove: async (key) => {
      map.delete(key);
    },
  };
}

interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Browser `localStorage` (shared by every tab of the origin). The store is looked up on
 * `globalThis` at each call, so importing this module is safe where there is none
 * (Node, React Native); calling it there rejects.
 */
export function localStorageAdapter(store?: WebStorageLike): TokenStorage {
  const ls = (): WebStorageLike => {
    const s = store ?? (globalThis as { localStorage?: WebStorageLike }).localStorage;
    if (!s) throw new Error('localStorage is not available in this environment; pass a storage of your own.');
    return s;
  };
  return {
    get: async (key) => ls().getItem(key),
    set: async (key, value) => ls().setItem(key, value),
    remove: async (key) => ls().removeItem(key),
  };
}
