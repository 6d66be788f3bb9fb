import { posix } from 'node:path';

/**
 * Reads a .dockerignore file into patterns exactly as moby/patternmatcher ignorefile.ReadAll:
 * BOM stripped, `#` comments (first character only), trimmed, cleaned with Go's filepath.Clean,
 * one leading `/` removed, `!` kept as a prefix.
 */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    let line = raw;
    if (i === 0 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.startsWith('#')) return;
    let pattern = line.trim();
    if (pattern === '') return;
    let invert = false;
    if (pattern.startsWith('!')) {
      invert = true;
      pattern = pattern.slice(1).trim();
    }
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  });
  return out;
}

/** Go's path.Clean: lexical normalisation, no trailing slash, '' → '.'. */
function cleanPath(p: string): string {
  let r = posix.normalize(p);
  if (r.length > 1 && r.endsWith('/')) r = r.slice(0, -1);
  return r;
}
