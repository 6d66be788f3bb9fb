import type { Ctx } from '../ctx.js';
import type { Descriptor } from '../oci/image.js';
import type { ImageLayout } from '../oci/image-layout.js';
import { parseReference } from '../oci/reference.js';
import { pushImage, type PushResult } from '../remote/push.js';
import type { RegistryClient } from '../remote/registry-client.js';

/**
 * Pushes the stored image `manifest` to the registry reference `name` (tag, or digest when the
 * name has one). Repositories of the same registry that local tags name are offered as
 * cross-repository mount sources, so re-pushing under another name transfers no layer.
 * Returns the pushed descriptor (same bytes as stored, so the same digest).
 */
export async function exportRegistry(client: RegistryClient, images: ImageLayout, manifest: Descriptor, name: string, ctx: Ctx): Promise<PushResult & { name: string }> {
  const ref = parseReference(name);
  const mountFrom: string[] = [];
  for (const { name: local } of await images.list()) {
    try {
      const r = parseReference(local);
      if (r.domain === ref.domain && r.path !== ref.path && !mountFrom.includes(r.path)) mountFrom.push(r.path);
    } catch {
      // Tags of exported layouts need not be references; they can't be mount sources anyway.
    }
  }
  const tag = ref.digest ? undefined : ref.tag;
  const result = await pushImage(client, images.blobs, manifest, ref, tag, { mountFrom }, ctx);
  return { ...result, name: ref.toString() };
}
