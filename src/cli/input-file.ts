import { createReadStream, constants as fsConstants, openSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * A file a verb reads its input from (`load -i`). A FIFO is opened non-blocking and read as a
 * pipe, through the event loop: a plain open() waits in libuv's thread pool for a writer, and
 * a read there waits for data, both beyond the reach of Ctrl-C and of process exit. (Linux
 * reports no hang-up on a FIFO whose writer has not come yet, so the pipe waits for one.)
 */
export function openInputFile(path: string): Readable {
  if (!statSync(path, { throwIfNoEntry: false })?.isFIFO()) return createReadStream(path);
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  return new Socket({ fd, readable: true, writable: false });
}
