// Entry point of `npm start`. Sized before anything touches libuv's thread pool:
// bcrypt and jose's Web Crypto share it, and hashing must never take every thread.
process.env.UV_THREADPOOL_SIZE ??= '8';
await import('./server.js');
