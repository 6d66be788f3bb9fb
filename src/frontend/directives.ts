/**
 * Parser directives (BuildKit parser/directives.go): `# escape=`, `# syntax=` and `# check=` on
 * the leading comment lines of a Dockerfile, plus the looser forms `DetectSyntax` accepts.
 */

/** A directive found on a leading line; `line` is 1-based. */
export interface Directive {
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

const KNOWN = new Set(['syntax', 'escape', 'check']);

const isGoBlank = (c: string): boolean => c === '\t' || c === '\n' || c === '\f' || c === '\r' || c === ' ';
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/**
 * What `[ \t\n\f\r]*(.+?)[ \t\n\f\r]*$` captures from the text after `=` (undefined: no
 * match), computed in linear time: that RegExp is quadratic on a value with a long inner run of
 * blanks. The capture keeps at least one character, even a blank one.
 */
function directiveValue(rest: string): string | undefined {
  let start = 0;
  while (start < rest.length - 1 && isGoBlank(rest[start]!)) start++;
  let end = rest.length;
  while (end > start + 1 && isGoBlank(rest[end - 1]!)) end--;
  const value = rest.slice(start, end);
  return value === '' || LINE_TERMINATOR.test(value) ? undefined : value;
}

/**
 * Reads directives line by line until the first line that is not one. Names are lower-cased;
 * an unknown name also ends the directive block. A repeated directive is an error.
 */
export class DirectiveParser {
  #line: number;
  #done = false;
  readonly #seen = new Set<string>();
  readonly #re: RegExp;

  /** `comment` is the comment prefix (`#`, or `//` for DetectSyntax); `line` lines already skipped. */
  constructor(comment = '#', line = 0) {
    // Go's \s is [\t\n\f\r ]: no vertical tab, no Unicode spaces.
    const prefix = comment.replace(/[/#]/g, (c) => `\\${c}`);
    this.#re = new RegExp(`^${prefix}[\\t\\n\\f\\r ]*([a-zA-Z][a-zA-Z0-9]*)[\\t\\n\\f\\r ]*=`);
    this.#line = line;
  }

  get done(): boolean {
    return this.#done;
  }

  /** The directive on this line, or undefined. Throws on a repeated directive. */
  parseLine(line: string): Directive | undefined {
    this.#line++;
    if (this.#done) return undefined;
    const head = this.#re.exec(line);
    const value = head ? directiveValue(line.slice(head[0].length)) : undefined;
    const m = head && value !== undefined ? [head[0], head[1], value] : undefined;
    if (!m) {
      this.#done = true;
      return undefined;
    }
    const name = m[1]!.toLowerCase();
    if (!KNOWN.has(name)) {
      this.#done = true;
      return undefined;
    }
    if (this.#seen.has(name)) throw new Error(`only one ${name} parser directive can be used`);
    this.#seen.add(name);
    return { name, value: m[2]!, line: this.#line };
  }

  /** All leading directives of `text`. Stops quietly at the first error, as BuildKit does. */
  parseAll(text: string): Directive[] {
    const out: Directive[] = [];
    for (const raw of text.split('\n')) {
      if (this.#done) break;
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      let d: Directive | undefined;
      try {
        d = this.parseLine(line);
      } catch {
        break;
      }
      if (d) out.push(d);
    }
    return out;
  }
}

export interface FoundDirective {
  /** The value up to the first space (`docker/dockerfile:1` of `docker/dockerfile:1 // x`). */
  readonly ref: string;
  /** The whole value. */
  readonly cmdline: string;
  /** 1-based line of the directive (0 for the JSON form). */
  readonly line: number;
}

/**
 * BuildKit `DetectSyntax`: `# syntax=`, else `// syntax=`, else a whole-file JSON object with a
 * string `syntax` key. A BOM and a `#!` first line are skipped.
 */
export function detectSyntax(text: string): FoundDirective | undefined {
  return findDirective('syntax', text, true);
}

/** BuildKit `ParseDirective`: only the `#` form. */
export function parseDirective(name: string, text: string): FoundDirective | undefined {
  return findDirective(name, text, false);
}

function findDirective(key: string, text: string, anyFormat: boolean): FoundDirective | undefined {
  let dt = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let line = 0;
  const nl = dt.indexOf('\n');
  const firstLine = nl < 0 ? dt : dt.slice(0, nl);
  if (firstLine.startsWith('#!')) {
    dt = nl < 0 ? '' : dt.slice(nl + 1);
    line = 1;
  }
  const fromParser = (p: DirectiveParser): FoundDirective | undefined => {
    const d = p.parseAll(dt).find((x) => x.name === key);
    if (!d) return undefined;
    const sp = d.value.indexOf(' ');
    return { ref: sp < 0 ? d.value : d.value.slice(0, sp), cmdline: d.value, line: d.line };
  };
  const hash = fromParser(new DirectiveParser('#', line));
  if (hash || !anyFormat) return hash;
  const slashes = fromParser(new DirectiveParser('//', line));
  if (slashes) return slashes;
  try {
    const v: unknown = JSON.parse(dt);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const s = (v as Record<string, unknown>)[key];
      if (typeof s === 'string') return { ref: s, cmdline: s, line };
    }
  } catch {
    // not JSON: no directive
  }
  return undefined;
}
