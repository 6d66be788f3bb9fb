// What the image verbs (image-commands.ts) run, imported when one runs: defining them, for
// --help, loads none of it.
export { openWorker } from '../orchestrator/worker.js';
export { dependentsBlockingRemoval } from '../images/dependents.js';
export { imageHistory } from '../images/history.js';
export { exportLocal } from '../exporter/local.js';
export { findImage, listImages } from '../images/list-images.js';
export { loadArchive } from '../images/load-archive.js';
export { runImage } from '../images/run-image.js';
export { saveImages } from '../images/save-images.js';
export { compressImage, compressedLayersDir } from '../exporter/compress-image.js';
export { readImage } from '../oci/image-reader.js';
