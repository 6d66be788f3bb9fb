import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * Checks a tsbuild root the way a crash-consistency test must: every blob's content matches its
 * name, every image the index names has its manifest, config and layers, and no temp file or
 * working mount directory is left behind. Returns the problems found (empty = consistent).
 */
export async function verifyStore(root: string): Promise<string[]> {
  const problems: string[] = [];
  const blobDir = join(root, 'store/blobs/sha256');
  const names = await readdir(blobDir).catch(() => [] as string[]);
  for (const name of names) {
    const h = createHash('sha256');
    await pipeline(createReadStream(join(blobDir, name)), h);
    if (h.digest('hex') !== name) problems.push(`blob ${name} does not match its digest`);
  }
  const have = new Set(names);
  const need = (d: string, what: string) => {
    if (!have.has(d.replace(/^sha256:/, ''))) problems.push(`${what} ${d} is missing`);
  };
  const index = JSON.parse(await readFile(join(root, 'store/index.json'), 'utf8')) as { manifests: { digest: string }[] };
  for (const m of index.manifests) {
    need(m.digest, 'manifest');
    if (!have.has(m.digest.slice(7))) continue;
    const manifest = JSON.parse(await readFile(join(blobDir, m.digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
    need(manifest.config.digest, 'config');
    for (const l of manifest.layers) need(l.digest, 'layer');
  }
  for (const dir of ['tmp', 'mounts']) {
    const left = await readdir(join(root, dir)).catch(() => [] as string[]);
    if (left.length) problems.push(`${dir}/ still holds ${left.join(', ')}`);
  }
  return problems;
}
