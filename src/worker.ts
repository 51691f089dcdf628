import { loadConfig, loadDotEnv } from './config/index.js';
import { reportFatal } from './fatal.js';

// Entry point of `npm run worker`: the BullMQ worker that sends email.
try {
  loadDotEnv();
  const config = loadConfig();
  const { runWorker } = await import('./worker-process.js');
  await runWorker(config);
} catch (err) {
  reportFatal(err, 'worker failed to start');
  process.exit(1);
}
