/**
 * Where overlayfs keeps its own bookkeeping (opaque dirs, redirects). Real root may use
 * `trusted.overlay.*`; a user namespace or a process without CAP_SYS_ADMIN can neither read nor
 * write `trusted.*`, so overlay's `userxattr` option moves it to `user.overlay.*`. A layer store
 * uses one of them for all its layers (see LayerStore.open).
 */
export type OverlayXattrPrefix = 'trusted.overlay.' | 'user.overlay.';

/** The opaque-directory marker under `prefix`. */
export function opaqueXattr(prefix: OverlayXattrPrefix): string {
  return `${prefix}opaque`;
}

/**
 * Overlay's bookkeeping in either namespace: never part of an image, and never taken from one
 * (a layer must not steer overlayfs). Dropping both makes images equal whichever store built them.
 */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}
