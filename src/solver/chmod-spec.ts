/**
 * COPY/ADD `--chmod`: octal (`755`) or symbolic (`u=rwx,go=rx`, `+x`, `a-w,u+s`) as chmod(1)
 * and BuildKit (dockerfile 1.14+) accept it. Symbolic modes depend on each file's current mode
 * (and `X` on whether it is a directory), so a spec is a function, not a number.
 */
export type ModeFn = (current: number, isDir: boolean) => number;

const CLAUSE = /^([ugoa]*)([-+=])([ugo]|[rwxXst]*)$/;

/** Parses `spec`; returns undefined when it is neither octal ≤ 07777 nor a valid symbolic mode. */
export function parseChmod(spec: string): ModeFn | undefined {
  if (/^[0-7]+$/.test(spec)) {
    const n = Number.parseInt(spec, 8);
    return n > 0o7777 ? undefined : () => n;
  }
  const clauses: { who: string; op: string; perm: string }[] = [];
  for (const part of spec.split(',')) {
    // Several ops may follow one another in a clause (`u+r-w`); split them keeping `who`.
    const m = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/.exec(part);
    if (!m) return undefined;
    for (const op of m[2]!.match(/[-+=](?:[ugo]|[rwxXst]*)/g) ?? []) {
      if (!CLAUSE.test(`${m[1]}${op}`)) return undefined;
      clauses.push({ who: m[1]!, op: op[0]!, perm: op.slice(1) });
    }
  }
  return (current, isDir) => {
    let mode = current & 0o7777;
    for (const c of clauses) {
      // No `who` means `a` (the umask is ignored: a build has none to apply).
      const who = c.who === '' || c.who.includes('a') ? 'ugo' : c.who;
      let bits = 0;
      if (c.perm === 'u' || c.perm === 'g' || c.perm === 'o') {
        const shift = { u: 6, g: 3, o: 0 }[c.perm];
        const v = (mode >> shift) & 7;
        for (const w of who) bits |= v << { u: 6, g: 3, o: 0 }[w as 'u' | 'g' | 'o'];
      } else {
        for (const w of who) {
          const shift = { u: 6, g: 3, o: 0 }[w as 'u' | 'g' | 'o'];
          for (const p of c.perm) {
            if (p === 'r') bits |= 4 << shift;
            else if (p === 'w') bits |= 2 << shift;
            else if (p === 'x') bits |= 1 << shift;
            else if (p === 'X' && (isDir || (current & 0o111) !== 0)) bits |= 1 << shift;
            else if (p === 's' && w === 'u') bits |= 0o4000;
            else if (p === 's' && w === 'g') bits |= 0o2000;
            else if (p === 't') bits |= 0o1000;
          }
        }
      }
      if (c.op === '+') mode |= bits;
      else if (c.op === '-') mode &= ~bits;
      else {
        let clear = 0;
        for (const w of who) clear |= 7 << { u: 6, g: 3, o: 0 }[w as 'u' | 'g' | 'o'];
        if (who.includes('u')) clear |= 0o4000;
        if (who.includes('g')) clear |= 0o2000;
        if (who === 'ugo') clear |= 0o1000;
        mode = (mode & ~clear) | bits;
      }
    }
    return mode;
  };
}
