import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A file shipped in tsbuild's own package (package.json, native/build/Release/…), by its path
 * from the package root. This module runs from tsc's output (dist/src/), from the bundle
 * (dist/bin/ or one of its chunks in dist/bin/chunks/) or from src/, so the root is the nearest
 * ancestor that holds the file. Falls back to dist/src's depth so a missing file's error names
 * the usual place.
 */
export function packageFile(rel: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  let dir = here;
  for (let up = 0; up < 4; up++) {
    dir = dirname(dir);
    const p = join(dir, rel);
    if (existsSync(p)) return p;
  }
  return join(here, '../..', rel);
}
