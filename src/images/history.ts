import type { StoredImage } from '../oci/image-reader.js';

/** One row of `tsbuild history`, newest first, as `docker history` lists them. */
export interface HistoryRow {
  /** The layer's compressed digest, or undefined for an entry that made no layer. */
  readonly layer?: string;
  readonly created?: string;
  readonly createdBy: string;
  /** Compressed layer size in bytes; 0 for empty layers. */
  readonly size: number;
  readonly comment?: string;
  readonly emptyLayer: boolean;
}

/**
 * Pairs `config.history` with the layers: entries with `empty_layer` take none, the others take
 * the next layer in order. Without history (some hand-made images), one row per layer.
 */
export function imageHistory(img: StoredImage): HistoryRow[] {
  const history = img.config.history ?? [];
  const rows: HistoryRow[] = [];
  let next = 0;
  if (history.length === 0) {
    for (const l of img.layers) rows.push({ layer: l.digest, createdBy: '', size: l.size, emptyLayer: false });
  }
  for (const h of history) {
    const empty = !!h.empty_layer;
    const layer = empty ? undefined : img.layers[next++];
    rows.push({
      ...(layer ? { layer: layer.digest } : {}),
      ...(h.created ? { created: h.created } : {}),
      createdBy: h.created_by ?? '',
      size: layer?.size ?? 0,
      ...(h.comment ? { comment: h.comment } : {}),
      emptyLayer: empty,
    });
  }
  return rows.reverse();
}
