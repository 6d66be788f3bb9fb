/** Where in a Dockerfile an error points. Lines and columns are 1-based. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  readonly endLine?: number;
  readonly endColumn?: number;
}

export type ErrorCode =
  | 'DOCKERFILE_NOT_FOUND'
  | 'DOCKERFILE_SYNTAX'
  | 'UNKNOWN_INSTRUCTION'
  | 'INVALID_INSTRUCTION'
  | 'UNKNOWN_STAGE'
  | 'COPY_SOURCE_MISSING'
  | 'COPY_SOURCE_ESCAPES'
  | 'PATH_ESCAPES'
  | 'RUN_FAILED'
  | 'IMAGE_NOT_FOUND'
  | 'INVALID_REFERENCE'
  | 'INVALID_OUTPUT'
  | 'USAGE'
  | 'STORE_CORRUPT'
  | 'RUNTIME'
  | 'REGISTRY_AUTH'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_UNSUPPORTED'
  | 'REGISTRY'
  | 'HTTP_SOURCE'
  | 'CHECKSUM_MISMATCH'
  | 'PLATFORM'
  | 'LIMIT_EXCEEDED'
  | 'INTERNAL';

/**
 * Every failure a user can cause. The CLI renders `file:line: error: message`, a snippet of
 * the Dockerfile around `location`, then `hint`. Never thrown with a bare string.
 */
export class BuildError extends Error {
  readonly code: ErrorCode;
  readonly location?: SourceLocation;
  readonly hint?: string;
  /** Last lines of output of a failed RUN, for the error rendering. */
  readonly outputTail?: readonly string[];
  readonly exitCode?: number;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { location?: SourceLocation; hint?: string; cause?: unknown; outputTail?: readonly string[]; exitCode?: number } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BuildError';
    this.code = code;
    this.location = opts.location;
    this.hint = opts.hint;
    this.outputTail = opts.outputTail;
    this.exitCode = opts.exitCode;
  }

  /** The same error pinned to a Dockerfile location, unless it already has one. */
  withLocation(location: SourceLocation | undefined): BuildError {
    if (this.location || !location) return this;
    return new BuildError(this.code, this.message, { location, hint: this.hint, cause: this.cause, outputTail: this.outputTail, exitCode: this.exitCode });
  }
}

export function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as NodeJS.ErrnoException).code === 'ABORT_ERR');
}
