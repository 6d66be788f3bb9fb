import { posix } from 'node:path';
import { BuildError, type SourceLocation } from '../errors.js';
import { makeVertex, type CopyAction, type MkfileAction, type Vertex } from '../solver/graph.js';
import { parseChmod } from '../solver/chmod-spec.js';
import { ShellLexer } from './shell-lexer.js';
import type { Instruction } from './instructions.js';
import { splitChown } from './convert-meta.js';
import { commitHistory, expansionEnv, stepName, type ConvertEnv, type StageState } from './stage-state.js';

const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/**
 * COPY/ADD → FileOp with one CopyAction. Sources come from the shared context vertex, an
 * earlier stage (`--from=name|index`) or an image (`--from=ref`); paths are expanded with the
 * stage env, made relative to the source root, and the destination resolved against WORKDIR.
 */
export async function convertCopy(ins: Extract<Instruction, { kind: 'COPY' | 'ADD' }>, st: StageState, env: ConvertEnv): Promise<void> {
  const loc = ins.location;
  const fail = (msg: string): BuildError => new BuildError('INVALID_INSTRUCTION', msg, { location: loc });
  const vars = expansionEnv(st);
  const expand = (w: string): string => env.lexer.processWord(w, vars);
  const sources = ins.sources.map(expand);
  const destRaw = expand(ins.dest);

  if (ins.kind === 'COPY' && sources.some(isUrl)) throw fail("source can't be a URL for COPY");
  const urls = sources.filter(isUrl);
  const locals = sources.filter((s) => !isUrl(s));
  let checksum: string | undefined;
  if (ins.checksum !== undefined) {
    checksum = expand(ins.checksum);
    if (locals.length > 0 || ins.sourceContents.length > 0) throw fail('checksum can\'t be specified for non-HTTP(S) sources');
    if (!/^sha256:[0-9a-f]{64}$/.test(checksum)) throw fail(`invalid checksum digest format: ${checksum} (expected sha256:<64 hex digits>)`);
  }
  let chmod: string | undefined;
  if (ins.chmod !== undefined) {
    chmod = expand(ins.chmod); // BuildKit expands ARG/ENV in --chmod (copy/chmod build case)
    if (!parseChmod(chmod)) throw fail(`invalid chmod parameter: '${chmod}'. it should be octal string and between 0 and 07777, or a symbolic mode like u=rwx,go=rx`);
  }
  const chownText = ins.chown !== undefined ? expand(ins.chown) : undefined;
  const excludes = ins.excludes.map(expand);

  let source: Vertex;
  if (ins.from !== undefined) {
    if (ins.from.includes('$')) {
      throw fail('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround');
    }
    const src = await env.fromSource(ins.from, st, loc);
    source = src.vertex ?? makeVertex({ kind: 'file', base: 'scratch', actions: [] }, [], { name: `[internal] empty stage ${ins.from}`, location: loc });
  } else {
    source = env.contextVertex();
    for (const src of locals) {
      const excluded = env.copyIgnored?.excluded(src);
      if (excluded !== undefined) env.lint('CopyIgnoredFile', `Attempting to ${ins.kind === 'ADD' ? 'Add' : 'Copy'} file ${JSON.stringify(excluded)} that is excluded by .dockerignore`, loc, ins.comments);
    }
  }

  const wd = st.config.config.WorkingDir || '/';
  let dest = posix.resolve(wd, destRaw);
  if (destRaw === '.' || destRaw === '' || destRaw.endsWith('/')) dest = dest === '/' ? '/' : dest + '/';
  // Several sources always go into a directory; with heredocs they are split over two copy
  // actions, so say it in the destination instead of relying on each action's match count.
  if (sources.length + ins.sourceContents.length > 1 && !dest.endsWith('/')) dest += '/';
  const srcPaths = locals.map((s) => {
    const rel = s.replace(/^\/+/, '');
    return rel === '' ? '.' : rel;
  });

  const name = stepName(st, ins.original);
  // --link: the copy is made on scratch and merged onto the parent (BuildKit's MergeOp), so its
  // cache key and layer do not depend on the parent. Destinations then can't see the parent's
  // directories or symlinks, as in BuildKit.
  const onParent = !ins.link && !!st.vertex;
  const inputs = onParent ? [st.vertex!] : [];
  const chown = chownText ? splitChown(chownText) : undefined;
  // BuildKit rejects names here (moby/buildkit#7134); tsbuild reads them from the parent's
  // passwd and group files, which alone enter the copy's cache key (by content).
  const byName = !!chown && [chown.user, chown.group ?? ''].some((x) => x !== '' && !/^\d+$/.test(x));
  const chownFrom = ins.link && st.vertex && byName ? inputs.push(st.vertex) - 1 : undefined;
  const common = {
    dest,
    ...(chown ? { chown } : {}),
    ...(chownFrom !== undefined ? { chownFrom } : {}),
    ...(chmod !== undefined ? { chmod } : {}),
  };
  // Only on the action copying the sources: absent flags keep the digests of older graphs.
  const sourceFlags = { ...(excludes.length > 0 ? { excludes } : {}), ...(ins.parents ? { parents: true } : {}) };
  const actions: CopyAction[] = [];
  if (srcPaths.length > 0) {
    inputs.push(source);
    // ADD extracts local archives unless --unpack=false.
    actions.push({ type: 'copy', source: inputs.length - 1, srcPaths, ...common, ...sourceFlags, allowWildcard: true, unpackArchives: ins.kind === 'ADD' && ins.unpack !== false });
  }
  for (const url of urls) {
    // BuildKit: one http source per URL; a remote archive stays a file unless --unpack=true.
    const filename = urlFilename(url);
    const op = { kind: 'http' as const, url, ...(checksum ? { checksum } : {}), filename };
    inputs.push(makeVertex(op, [], { name: `[internal] download ${url}`, location: loc }));
    actions.push({ type: 'copy', source: inputs.length - 1, srcPaths: [filename], ...common, allowWildcard: false, unpackArchives: ins.unpack === true });
  }
  if (ins.sourceContents.length > 0) {
    inputs.push(inlineFiles(ins.sourceContents, chmod, env, st, loc));
    actions.push({ type: 'copy', source: inputs.length - 1, srcPaths: ins.sourceContents.map((c) => c.path), ...common, allowWildcard: false, unpackArchives: false });
  }
  let vertex = makeVertex({ kind: 'file', base: onParent ? 'input' : 'scratch', actions }, inputs, { name, location: loc });
  if (ins.link && st.vertex) vertex = makeVertex({ kind: 'merge' }, [st.vertex, vertex], { name, location: loc });
  st.vertex = vertex;
  const heredocWords = ins.sourceContents.map((c) => `<<${c.path}`);
  commitHistory(st, `${ins.kind} ${[...sources, ...heredocWords, destRaw].join(' ')}`, true, vertex, true);
}

/**
 * Heredoc sources as files in a scratch tree (BuildKit: Mkfile into scratch, then the usual
 * copy). Unquoted delimiters expand `$vars` and escapes but leave quotes alone.
 */
function inlineFiles(contents: Extract<Instruction, { kind: 'COPY' | 'ADD' }>['sourceContents'], chmod: string | undefined, env: ConvertEnv, st: StageState, loc: SourceLocation): Vertex {
  const lexer = new ShellLexer(env.lexer.escapeToken, { skipProcessQuotes: true }, env.lexer.budget);
  const vars = expansionEnv(st);
  const mode = chmod !== undefined ? parseChmod(chmod)!(0o644, false) : 0o644;
  const actions: MkfileAction[] = contents.map((c) => ({
    type: 'mkfile',
    path: `/${c.path}`,
    data: c.expand ? lexer.processWord(c.data, vars) : c.data,
    mode,
  }));
  return makeVertex({ kind: 'file', base: 'scratch', actions }, [], { name: '[internal] preparing inline document', location: loc });
}

/** BuildKit's name for a download whose URL path has no usable last segment. */
export const UNNAMED_DOWNLOAD = '__unnamed__';

/**
 * The file name of a download: the last segment of the URL's decoded path, as BuildKit's
 * dockerfile2llb takes it (Go's url.Parse decodes, then path.Base, which skips trailing
 * slashes), else `__unnamed__`. Decoding comes first so that `..%2F..%2Fetc%2Fx` is the name
 * `x`, never a path; a name that could still address anything but one entry of its directory
 * (`.`, `..`, a backslash, a NUL) is `__unnamed__` too.
 */
export function urlFilename(url: string): string {
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    return UNNAMED_DOWNLOAD;
  }
  const trimmed = path.replace(/\/+$/, '');
  const base = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  return base === '' || base === '.' || base === '..' || base.includes('\\') || base.includes('\0') ? UNNAMED_DOWNLOAD : base;
}
