import { BuildError } from '../errors.js';
import type { CheckWarning } from './build-checks.js';
import type { Warning } from './stage-state.js';

/**
 * A compile error with the warnings found before it. BuildKit prints those warnings, then the
 * error (a parse error after two lint findings shows both findings): the builder reports
 * `warnings` before it fails, `--check` lists `checks` before the error.
 */
export class CompileFailure extends BuildError {
  constructor(
    error: BuildError,
    readonly warnings: readonly Warning[],
    readonly checks: readonly CheckWarning[],
  ) {
    super(error.code, error.message, {
      ...(error.location ? { location: error.location } : {}),
      ...(error.hint !== undefined ? { hint: error.hint } : {}),
      cause: error.cause,
      ...(error.outputTail ? { outputTail: error.outputTail } : {}),
      ...(error.exitCode !== undefined ? { exitCode: error.exitCode } : {}),
    });
  }
}
