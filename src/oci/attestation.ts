/** How an image index marks an attestation manifest and the image it is about (BuildKit's keys). */
export const ATTESTATION_REF_TYPE = 'vnd.docker.reference.type';
export const ATTESTATION_REF_DIGEST = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST = 'attestation-manifest';

/** True for an index entry that is an attestation manifest, not an image. */
export function isAttestation(d: { readonly annotations?: Readonly<Record<string, string>> }): boolean {
  return d.annotations?.[ATTESTATION_REF_TYPE] === ATTESTATION_MANIFEST;
}
