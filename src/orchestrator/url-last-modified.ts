import { Readable } from 'node:stream';
import { BuildError, isAbortError } from '../errors.js';
import { MAX_EPOCH } from '../frontend/source-date-epoch.js';
import { archiveMaxTime } from './archive-max-time.js';
import { agentOptions, DEFAULT_HTTP_TIMEOUTS, transferFailure, type HttpTimeouts } from '../remote/http-timeouts.js';

/** An HTTP date a config can hold (1970 to 9999), else undefined. */
export function httpDate(value: string | null | undefined): Date | undefined {
  const ms = value ? Date.parse(value) : NaN;
  return ms >= 0 && ms <= MAX_EPOCH * 1000 ? new Date(Math.floor(ms / 1000) * 1000) : undefined;
}

/**
 * SOURCE_DATE_EPOCH=<stage> whose one ADD is `url`: the URL's Last-Modified, asked with HEAD
 * (GET, body discarded, when the server refuses HEAD); without one, as BuildKit, the newest
 * file time of the archive it serves (downloaded with GET, only its tar headers read), and
 * undefined (no epoch) when it is not an archive.
 */
export async function urlLastModified(url: string, signal: AbortSignal, timeouts: HttpTimeouts = DEFAULT_HTTP_TIMEOUTS): Promise<Date | undefined> {
  const { Agent, fetch } = await import('../remote/undici.js'); // on first use: loading it costs ~50 ms at startup
  const agent = new Agent(agentOptions(timeouts));
  const ask = async (method: 'HEAD' | 'GET') => {
    const res = await fetch(url, { method, signal, redirect: 'follow', dispatcher: agent });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new BuildError('HTTP_SOURCE', `SOURCE_DATE_EPOCH: ${url}: the server answered ${res.status} ${res.statusText}`.trimEnd());
    }
    return res;
  };
  try {
    let res = await fetch(url, { method: 'HEAD', signal, redirect: 'follow', dispatcher: agent });
    if (res.status === 405 || res.status === 501) {
      res = await ask('GET');
      await res.body?.cancel().catch(() => undefined);
    } else if (!res.ok) throw new BuildError('HTTP_SOURCE', `SOURCE_DATE_EPOCH: ${url}: the server answered ${res.status} ${res.statusText}`.trimEnd());
    const t = httpDate(res.headers.get('last-modified'));
    if (t) return t;
    const body = (await ask('GET')).body;
    return body ? await archiveMaxTime(Readable.fromWeb(body as never), signal) : undefined;
  } catch (e) {
    if (isAbortError(e) || signal.aborted || e instanceof BuildError) throw e;
    throw new BuildError('HTTP_SOURCE', `SOURCE_DATE_EPOCH: ${url}: ${transferFailure(e, timeouts)}`, { cause: e });
  } finally {
    await agent.destroy().catch(() => undefined);
  }
}
