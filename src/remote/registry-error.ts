import { BuildError, type ErrorCode } from '../errors.js';

/** One entry of a distribution-spec error body: `{"errors":[{"code","message","detail"}]}`. */
export interface OciErrorEntry {
  readonly code: string;
  readonly message?: string;
}

/**
 * A registry failure, kept structured (status, OCI error codes, `temporary`) so retry logic reads
 * fields, not messages. The message always names the registry and, when known, the repository.
 */
export class RegistryError extends BuildError {
  readonly registry: string;
  readonly repository?: string;
  /** HTTP status, absent for connection-level failures. */
  readonly status?: number;
  readonly ociErrors: readonly OciErrorEntry[];
  /** Worth retrying: 429, 5xx, connection resets. */
  readonly temporary: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { registry: string; repository?: string; status?: number; ociErrors?: readonly OciErrorEntry[]; temporary?: boolean; hint?: string; cause?: unknown },
  ) {
    super(code, message, { hint: opts.hint, cause: opts.cause });
    this.name = 'RegistryError';
    this.registry = opts.registry;
    this.repository = opts.repository;
    this.status = opts.status;
    this.ociErrors = opts.ociErrors ?? [];
    this.temporary = opts.temporary ?? false;
  }
}

/** Parses an error body; anything that isn't the spec's JSON shape yields no entries. */
export function parseOciErrors(body: string): OciErrorEntry[] {
  try {
    const j = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(j.errors)) return [];
    return j.errors
      .filter((e): e is { code: string; message?: unknown } => typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string')
      .map((e) => ({ code: e.code, ...(typeof e.message === 'string' ? { message: e.message } : {}) }));
  } catch {
    return [];
  }
}

/** Whether an HTTP status is worth retrying (BuildKit and ggcr retry the same set). */
export function isTemporaryStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505);
}

/**
 * The error for a failed response: 401 → REGISTRY_AUTH, 403 → REGISTRY_DENIED, 404 →
 * IMAGE_NOT_FOUND, others → REGISTRY. `what` says what was being done ("pull manifest latest").
 */
export function errorForStatus(status: number, body: string, where: { registry: string; repository?: string; what: string }): RegistryError {
  const ociErrors = parseOciErrors(body);
  const detail = ociErrors.length ? ': ' + ociErrors.map((e) => `${e.code}${e.message ? ` (${e.message})` : ''}`).join(', ') : '';
  const repo = where.repository ? ` repository ${where.repository}` : '';
  const at = `registry ${where.registry}${repo}`;
  const base = { registry: where.registry, repository: where.repository, status, ociErrors, temporary: isTemporaryStatus(status) };
  switch (status) {
    case 401:
      return new RegistryError('REGISTRY_AUTH', `${where.what}: authentication failed at ${at} (HTTP 401)${detail}`, {
        ...base,
        hint: `log in with \`tsbuild login ${where.registry}\` or check the credentials in your docker config.json`,
      });
    case 403:
      return new RegistryError('REGISTRY_DENIED', `${where.what}: access denied at ${at} (HTTP 403)${detail}`, {
        ...base,
        hint: 'the credentials are valid but lack permission for this repository',
      });
    case 404:
      return new RegistryError('IMAGE_NOT_FOUND', `${where.what}: not found at ${at} (HTTP 404)${detail}`, base);
    default:
      return new RegistryError('REGISTRY', `${where.what}: ${at} answered HTTP ${status}${detail}`, base);
  }
}
