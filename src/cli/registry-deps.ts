// What the registry verbs (registry-commands.ts) run, imported when one runs: defining them,
// for --help, loads none of it.
export { openWorker } from '../orchestrator/worker.js';
export { exportRegistry } from '../exporter/registry.js';
export { compressImage, compressedLayersDir } from '../exporter/compress-image.js';
export { pullImage } from '../remote/pull.js';
export { RegistryClient } from '../remote/registry-client.js';
export { readImage } from '../oci/image-reader.js';
