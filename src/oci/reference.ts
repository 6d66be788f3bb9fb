import { BuildError } from '../errors.js';
import { isDigest, type Digest } from './digest.js';

/**
 * A parsed, normalized docker image reference (distribution/reference semantics):
 * `busybox` → domain `docker.io`, path `library/busybox`, tag `latest`.
 */
export interface Reference {
  /** Registry host, with port when given: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** Repository path inside the registry: `library/busybox`, `team/app`. */
  readonly path: string;
  /** `latest` when neither a tag nor a digest was given; absent when only a digest was. */
  readonly tag?: string;
  readonly digest?: Digest;
  /** `domain/path`, e.g. `docker.io/library/busybox`. */
  readonly name: string;
  /** The short form docker prints: `busybox:latest`, `team/app:1`, `localhost:5000/x:latest`. */
  readonly familiar: string;
  /** Fully qualified: `docker.io/library/busybox:latest`, `host/x@sha256:…`, `host/x:t@sha256:…`. */
  toString(): string;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
const NAME_TOTAL_MAX = 255;

// From distribution/reference/regexp.go.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|${IPV6})(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

/**
 * Parses and normalizes `[domain/]path[:tag][@digest]`. Throws BuildError('INVALID_REFERENCE')
 * naming the problem (uppercase repository, bad characters, bad tag or digest).
 */
export function parseReference(s: string): Reference {
  const bad = (why: string): never => {
    throw new BuildError('INVALID_REFERENCE', `invalid reference ${JSON.stringify(s)}: ${why}`);
  };
  if (s === '') bad('empty');
  if (/\s/.test(s)) bad('contains whitespace');

  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) bad(`digest ${JSON.stringify(d)} is not sha256:<64 lowercase hex>`);
    digest = d as Digest;
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  // A tag follows the last ':' only if no '/' comes after it (else the ':' is a port).
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && !rest.slice(colon + 1).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) bad(`tag ${JSON.stringify(tag)} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (!DOMAIN_RE.test(domain)) bad(`registry host ${JSON.stringify(domain)} is not valid`);
  if (path === '') bad('repository name is empty');
  if (path !== path.toLowerCase()) bad('repository name must be lowercase');
  for (const c of path.split('/')) {
    if (!PATH_COMPONENT_RE.test(c)) bad(`repository path component ${JSON.stringify(c)} may only contain [a-z0-9] separated by '.', '_', '__' or '-'`);
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  const name = `${domain}/${path}`;
  if (name.length > NAME_TOTAL_MAX) bad(`repository name is longer than ${NAME_TOTAL_MAX} characters`);
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;

  let familiarName = name;
  if (domain === DEFAULT_DOMAIN) {
    familiarName = path;
    const short = path.slice(OFFICIAL_REPO_PREFIX.length);
    if (path.startsWith(OFFICIAL_REPO_PREFIX) && !short.includes('/')) familiarName = short;
  }
  const suffix = (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
  const full = name + suffix;
  return {
    domain,
    path,
    tag,
    digest,
    name,
    familiar: familiarName + suffix,
    toString: () => full,
  };
}

/** `parseReference(s).toString()`: the form the local store keys tags by. */
export function normalizeReference(s: string): string {
  return parseReference(s).toString();
}
