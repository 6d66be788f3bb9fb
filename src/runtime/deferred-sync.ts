import { syncfs } from '../oci/native-fs.js';

/**
 * One syncfs of a filesystem for many writes: `request()` notes that something needs flushing;
 * `settle()` flushes (once for everything requested so far, again for what was requested while
 * it ran) and throws the first failure, to every caller until the end.
 *
 * Why: unmounting an overlay syncs its whole upper filesystem, everything dirty on it and not
 * only the layer, on every RUN step's path (518 MB written by a RUN waited 0.2-1.3 s for it
 * before its commit could start; a machine whose disk others write to pays for their data too).
 * RUN overlays are mounted `volatile` instead, and the upperdirs they leave as layers are
 * flushed by one syncfs when the build's steps are done: once per build, as their blobs are
 * already fsynced one by one. A sync per step off the steps' path was measured too: it
 * contended with the following steps' own writes and was slower.
 */
export class DeferredSync {
  readonly #path: string;
  #pending = false;
  #running: Promise<void> | undefined;
  #error: unknown;

  /** `path`: a directory on the filesystem to sync. */
  constructor(path: string) {
    this.#path = path;
  }

  request(): void {
    this.#pending = true;
  }

  async settle(): Promise<void> {
    while (this.#pending || this.#running) {
      if (!this.#running) {
        this.#pending = false;
        this.#running = syncfs(this.#path)
          .catch((e: unknown) => {
            this.#error ??= e;
          })
          .finally(() => {
            this.#running = undefined;
          });
      }
      await this.#running;
    }
    if (this.#error !== undefined) throw this.#error;
  }
}
