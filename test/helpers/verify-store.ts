import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * Checks a tsbuild root the way a crash-consistency test must: every blob's content matches its
 * name, every image (or image index) the store's index names has its manifests, configs and layers, and no temp file or
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
  type Doc = { manifests?: { digest: string }[]; config?: { digest: string }; layers?: { digest: string }[] };
  // An image index (several platforms) names manifests; a manifest names its config and layers.
  const check = async (digest: string, what: string): Promise<void> => {
    need(digest, what);
    if (!have.has(digest.slice(7))) return;
    const doc = JSON.parse(await readFile(join(blobDir, digest.slice(7)), 'utf8')) as Doc;
    for (const m of doc.manifests ?? []) await check(m.digest, 'manifest');
    if (doc.manifests) return;
    if (!doc.config) problems.push(`manifest ${digest} has no config`);
    else need(doc.config.digest, 'config');
    for (const l of doc.layers ?? []) need(l.digest, 'layer');
  };
  const index = JSON.parse(await readFile(join(root, 'store/index.json'), 'utf8')) as { manifests: { digest: string }[] };
  for (const m of index.manifests) await check(m.digest, 'manifest');
  for (const dir of ['tmp', 'mounts']) {
    const left = await readdir(join(root, dir)).catch(() => [] as string[]);
    // What is inside and whose it was, so a leftover can be traced to the step that made it.
    const described = await Promise.all(
      left.map(async (n) => {
        const inner = await readdir(join(root, dir, n)).catch(() => undefined);
        const owner = await readFile(join(root, dir, n, 'owner'), 'utf8').catch(() => undefined);
        return inner ? `${n} [${inner.join(' ')}]${owner ? ` owner ${owner}` : ''}` : n;
      }),
    );
    if (left.length) problems.push(`${dir}/ still holds ${described.join(', ')}`);
  }
  return problems;
}
