import { BuildError } from '../errors.js';
import { absolute, KERNEL_TREES, resolveHostPath, under } from './output-dest.js';

/**
 * Refuses a build context directory that is, or holds, kernel interfaces: in /proc, /sys and
 * /dev regular files are endless (/proc/kcore), block on read (/proc/kmsg) or change as they
 * are read, so a COPY would hang or copy garbage; `/` holds all three. (Special files in an
 * ordinary context are fine: FIFOs and devices are copied as nodes, never read.)
 */
export async function checkContextDir(path: string, flag: string): Promise<void> {
  const resolved = await resolveHostPath(absolute(path), flag);
  const tree = resolved === '/' ? '/' : KERNEL_TREES.find((d) => under(resolved, d));
  if (tree) {
    const what = resolved === '/' ? '/ holds /proc, /sys and /dev' : resolved === tree ? `${tree} holds` : `${resolved} is in ${tree}, which holds`;
    throw new BuildError('USAGE', `${flag} ${path}: ${what} kernel interfaces, not files to build from`, {
      hint: 'use a directory that holds only the files the build needs',
    });
  }
}
