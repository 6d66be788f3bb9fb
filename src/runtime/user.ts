import { BuildError } from '../errors.js';
import { readFileInRoot } from '../oci/in-root.js';

/** The numeric identity a RUN executes as. */
export interface ExecUser {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups, in /etc/group order. */
  readonly additionalGids: number[];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/**
 * Resolves a Dockerfile `USER` value against the image's /etc/passwd and /etc/group, with the
 * semantics of runc's `user.GetExecUser` (used by moby and BuildKit):
 * - `''` → as `0` (root's supplementary groups from /etc/group included).
 * - `name` or `uid`: looked up in /etc/passwd (by name, or by uid); gid is the entry's. A numeric
 *   uid with no entry runs as that uid with gid 0. An unknown name is a `BuildError`.
 * - supplementary groups: only without an explicit group, the groups in /etc/group listing the
 *   matched user name as a member.
 * - `user:group`: group by name or gid in /etc/group; a numeric gid need not exist; no
 *   supplementary groups.
 * The files are read through `resolvedInRoot`, so symlinks in the image cannot point outside it.
 * Missing files behave as empty ones.
 */
export async function resolveUser(rootfs: string, user: string): Promise<ExecUser> {
  // No USER is uid 0 looked up like `USER 0`: containerd (since CVE-2023-25173) and so BuildKit
  // give root its supplementary groups from /etc/group.
  if (user === '') user = '0';
  const colon = user.indexOf(':');
  const userArg = colon < 0 ? user : user.slice(0, colon);
  const groupArg = colon < 0 ? '' : user.slice(colon + 1);
  if (userArg === '') throw new BuildError('INVALID_INSTRUCTION', `invalid user ${JSON.stringify(user)}: empty user name`);

  const userNum = parseId(userArg);
  const passwd = parsePasswd(await readInRootfs(rootfs, '/etc/passwd'));
  const entry = passwd.find((p) => p.name === userArg) ?? (userNum === undefined ? undefined : passwd.find((p) => p.uid === userNum));
  if (!entry && userNum === undefined) {
    throw new BuildError('INVALID_INSTRUCTION', `unable to find user ${userArg}: no matching entries in passwd file`);
  }
  if (userNum !== undefined && userNum > 0x7fffffff) {
    throw new BuildError('INVALID_INSTRUCTION', `uid ${userArg} is out of range`);
  }
  const uid = entry?.uid ?? userNum!;
  let gid = entry?.gid ?? 0;
  const additionalGids: number[] = [];

  if (groupArg !== '' || entry) {
    const groups = parseGroup(await readInRootfs(rootfs, '/etc/group'));
    if (groupArg !== '') {
      const groupNum = parseId(groupArg);
      const g = groups.find((x) => x.name === groupArg) ?? (groupNum === undefined ? undefined : groups.find((x) => x.gid === groupNum));
      if (!g && groupNum === undefined) {
        throw new BuildError('INVALID_INSTRUCTION', `unable to find group ${groupArg}: no matching entries in group file`);
      }
      gid = g?.gid ?? groupNum!;
    } else if (entry) {
      for (const g of groups) if (g.members.includes(entry.name)) additionalGids.push(g.gid);
    }
  }
  return { uid, gid, additionalGids };
}

/**
 * Resolves `COPY --chown` / `ADD --chown` (and WORKDIR's mkdir under USER) with BuildKit's
 * file-op semantics, which differ from `USER`: a numeric user with no group means `uid:uid` (so
 * `--chown=1000` gives 1000:1000, found in passwd or not); a named user takes its passwd gid;
 * `group` by name (from /etc/group) or number overrides the gid. A name missing from the image's
 * files is not an error: an unknown user leaves 0:0 and an unknown group leaves the gid as it
 * was, as BuildKit's readUser (solver/llbsolver/ops/user_linux.go) does. Files are read inside
 * `rootfs` (symlinks clamped, see in-root.ts).
 */
export async function resolveChown(rootfs: string, chown: { readonly user: string; readonly group?: string }): Promise<{ uid: number; gid: number }> {
  let uid: number;
  let gid: number;
  const userNum = parseId(chown.user);
  if (userNum !== undefined) {
    uid = userNum;
    gid = userNum;
  } else {
    const entry = parsePasswd(await readInRootfs(rootfs, '/etc/passwd')).find((p) => p.name === chown.user);
    uid = entry?.uid ?? 0;
    gid = entry?.gid ?? 0;
  }
  if (chown.group !== undefined && chown.group !== '') {
    const groupNum = parseId(chown.group);
    if (groupNum !== undefined) {
      gid = groupNum;
    } else {
      const g = parseGroup(await readInRootfs(rootfs, '/etc/group')).find((x) => x.name === chown.group);
      if (g) gid = g.gid;
    }
  }
  return { uid, gid };
}

function parseId(s: string): number | undefined {
  return /^\d+$/.test(s) ? Number(s) : undefined;
}

/** An image's account database is small; a bigger one is refused rather than read whole. */
const MAX_ACCOUNT_FILE_BYTES = 16 << 20;

/** The text of the rootfs's `path`; '' when it is missing or not a regular file (a fifo would block). */
async function readInRootfs(rootfs: string, path: string): Promise<string> {
  try {
    return readFileInRoot(rootfs, path, MAX_ACCOUNT_FILE_BYTES);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EINVAL') return '';
    if (code === 'EFBIG') throw new BuildError('INVALID_INSTRUCTION', `${path} in the image is larger than ${MAX_ACCOUNT_FILE_BYTES >> 20} MiB`);
    throw e;
  }
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(':');
    if (f.length < 4 || f[0] === '' || line.trimStart().startsWith('#')) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === undefined || gid === undefined) continue;
    out.push({ name: f[0]!, uid, gid });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(':');
    if (f.length < 3 || f[0] === '' || line.trimStart().startsWith('#')) continue;
    const gid = parseId(f[2]!);
    if (gid === undefined) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter((m) => m !== '') });
  }
  return out;
}
