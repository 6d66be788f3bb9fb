import { resolve } from 'node:path';

/**
 * `DIR[:TAG][@DIGEST]`, how an OCI layout is named on the command line (`--build-context
 * name=oci-layout://…`, `tsbuild analyze oci-layout://…`): the directory (resolved), the tag
 * (after the last ':' past the last '/', so `../a:b/c` has none), and the digest (which wins).
 */
export function parseLayoutSpec(value: string): { dir: string; tag?: string; digest?: string } {
  const at = value.lastIndexOf('@');
  const digest = at < 0 ? undefined : value.slice(at + 1);
  const rest = at < 0 ? value : value.slice(0, at);
  const slash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', slash + 1);
  const dir = resolve(colon < 0 ? rest : rest.slice(0, colon));
  const tag = colon < 0 ? undefined : rest.slice(colon + 1);
  return { dir, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}
