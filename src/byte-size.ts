/**
 * `512`, `10k`, `500MB`, `1.5GiB`, `1p` → bytes: Go's units.RAMInBytes, which BuildKit uses for
 * tmpfs sizes and docker for `--keep-storage`. Every unit is a power of 1024 (k, kb and kib all
 * mean 1024). Undefined when `s` is not a size; callers word the error for their flag or key.
 */
export function parseByteSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(s.trim());
  if (!m) return undefined;
  const power = m[2] ? 'kmgtp'.indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/** Bytes for people: `1.5 GiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Bytes as a flag value parseByteSize reads back: `32m`, `1g`, `1536k`, `1000`. */
export function formatByteSizeFlag(n: number): string {
  for (const [unit, size] of [['t', 1024 ** 4], ['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}
