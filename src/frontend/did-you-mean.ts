import { editDistance } from './parse.js';

/**
 * BuildKit's util/suggest WrapError (case-sensitive): `message` with " (did you mean X?)" for the
 * first closest option within 2 edits (Levenshtein), unchanged when `val` is itself an option or
 * nothing is close.
 */
export function withSuggestion(message: string, val: string, options: Iterable<string>): string {
  let match = '';
  let min = 3;
  for (const o of options) {
    if (o === val) return message;
    const d = editDistance(val, o);
    if (d < min) [match, min] = [o, d];
  }
  return match ? `${message} (did you mean ${match}?)` : message;
}
