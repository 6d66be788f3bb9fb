/**
 * Splits one CSV record, as the flag values of `--output`, `--cache-to`, `RUN --mount` and
 * `RUN --device` are written (BuildKit reads them with Go's encoding/csv): commas separate
 * fields, double quotes group, `""` inside quotes is a literal quote.
 * @param opts.quoteAtFieldStartOnly a `"` opens a quote only as a field's first character (else it is literal)
 * @returns every field, empty ones included, or undefined when a quote is left open
 */
export function splitCsvRecord(s: string, opts: { quoteAtFieldStartOnly?: boolean } = {}): string[] | undefined {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"' && (!opts.quoteAtFieldStartOnly || cur === '')) quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) return undefined;
  out.push(cur);
  return out;
}
