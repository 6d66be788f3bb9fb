import { readFile } from 'node:fs/promises';

/** A range of subordinate ids a user may map into a user namespace (shadow's subuid(5)). */
export interface IdRange {
  readonly start: number;
  readonly count: number;
}

/**
 * The ranges /etc/subuid (or /etc/subgid) grants `user`, in file order. Pure. Lines are
 * `name-or-id:start:count`; a line names the user by login name or by numeric id, as
 * newuidmap accepts both. Comments, blank and malformed lines are skipped (newuidmap skips
 * them too, so they grant nothing).
 */
export function parseSubordinateIds(text: string, user: { readonly name: string | undefined; readonly id: number }): IdRange[] {
  const out: IdRange[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([^:]+):(\d+):(\d+)$/.exec(line);
    if (!m) continue;
    if (m[1] !== user.name && m[1] !== String(user.id)) continue;
    const start = Number(m[2]);
    const count = Number(m[3]);
    if (count > 0 && start + count <= 2 ** 32) out.push({ start, count });
  }
  return out;
}

/** The ranges `file` grants `user`; none when the file is missing. */
export async function readSubordinateIds(file: string, user: { readonly name: string | undefined; readonly id: number }): Promise<IdRange[]> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '';
    throw e;
  });
  return parseSubordinateIds(text, user);
}
