import { posix } from 'node:path';
import type { Instruction } from './instructions.js';

/**
 * tsbuild's own build checks (not BuildKit's) for the usual causes of wasted image space that
 * `tsbuild analyze` measures: package manager caches left in a layer, and files a step adds
 * that a later step deletes. They read RUN's shell text with a deliberately simple splitter
 * (not a shell parser: a RUN script can be anything) and stay silent whenever the text could
 * mean the waste is handled: false positives teach people to skip a rule.
 */
export const LAYER_HYGIENE_RULES = {
  AptListsNotRemoved: { description: 'Package lists downloaded by apt-get update should be removed in the same RUN' },
  PipCacheNotDisabled: { description: 'pip install should not leave its download cache in the image' },
  FileRemovedInLaterStep: { description: 'Files added in one step and removed in a later step still take space in the image' },
} as const;

type Warn = (rule: keyof typeof LAYER_HYGIENE_RULES, message: string) => void;

/** Per-stage state of the checks; feed it a stage's instructions in order, `reset()` at each FROM. */
export class LayerHygiene {
  #env = new Set<string>();
  #workdir: string | undefined = '/';
  /** Absolute paths COPY/ADD put content at in this stage → the line that did. */
  #added = new Map<string, { line: number; kind: string }>();

  reset(): void {
    this.#env = new Set();
    this.#workdir = '/';
    this.#added = new Map();
  }

  see(ins: Instruction, warn: Warn): void {
    switch (ins.kind) {
      case 'ENV':
        for (const p of ins.pairs) this.#env.add(p.key);
        break;
      case 'WORKDIR':
        this.#workdir = ins.path.includes('$') ? undefined : ins.path.startsWith('/') ? posix.normalize(ins.path) : this.#workdir && posix.join(this.#workdir, ins.path);
        break;
      case 'COPY':
      case 'ADD':
        this.#copy(ins);
        break;
      case 'RUN':
        this.#run(ins, warn);
        break;
      default:
        break;
    }
  }

  #copy(ins: Extract<Instruction, { kind: 'COPY' | 'ADD' }>): void {
    const dest = ins.dest;
    if (dest.includes('$') || /[*?[]/.test(dest)) return;
    const abs = dest.startsWith('/') ? dest : this.#workdir === undefined ? undefined : posix.join(this.#workdir, dest);
    if (abs === undefined) return;
    const path = posix.normalize(abs).replace(/\/+$/, '');
    // `/` and other directories every image has are never "the added file".
    if (path === '' || ['/bin', '/etc', '/usr', '/var', '/lib', '/opt', '/tmp', '/root', '/home', '/usr/local', '/usr/local/bin', '/usr/bin', '/srv'].includes(path)) return;
    this.#added.set(path, { line: ins.location.line, kind: ins.kind });
    // With a single source named literally into a directory, the file lands at dest/basename.
    if ((dest.endsWith('/') || ins.sources.length > 1) && !ins.sources.some((s) => /[*?[$]/.test(s))) {
      for (const s of ins.sources) {
        const base = posix.basename(s.replace(/\/+$/, ''));
        if (base && base !== '.' && base !== '..' && !/^[a-z]+:\/\//i.test(s)) this.#added.set(posix.join(path, base), { line: ins.location.line, kind: ins.kind });
      }
    }
  }

  #run(ins: Extract<Instruction, { kind: 'RUN' }>, warn: Warn): void {
    const text = [ins.cmd.args.join(' '), ...ins.files.map((f) => f.data)].join('\n');
    const commands = simpleCommands(text);
    const cacheTargets = ins.mounts.map(mountTarget).filter((t): t is string => t !== undefined);
    const mounted = (dir: string) => cacheTargets.some((t) => t === dir || dir.startsWith(t === '/' ? '/' : t + '/'));

    if (commands.some((c) => isApt(c) && c.includes('update')) && !text.includes('/var/lib/apt/lists') && !mounted('/var/lib/apt/lists')) {
      warn('AptListsNotRemoved', 'apt-get update downloads package lists that stay in this layer: remove /var/lib/apt/lists/* at the end of the same RUN (or use a cache mount)');
    }
    const pipInstall = commands.some((c) => {
      const at = pipAt(c);
      return at >= 0 && c[at + 1] === 'install' && !c.includes('--no-cache-dir');
    });
    if (pipInstall && !text.includes('PIP_NO_CACHE_DIR') && !this.#env.has('PIP_NO_CACHE_DIR') && !text.includes('.cache') && !mounted('/root/.cache/pip') && !cacheTargets.some((t) => /\/\.cache(\/pip)?$/.test(t))) {
      warn('PipCacheNotDisabled', 'pip install keeps its download cache (~/.cache/pip) in this layer: pass --no-cache-dir, set ENV PIP_NO_CACHE_DIR=1, or use a cache mount');
    }
    for (const c of commands) {
      if (c[0] !== 'rm') continue;
      const recursive = c.some((w) => /^-[a-zA-Z]*[rR]/.test(w) || w === '--recursive');
      for (const operand of c.slice(1).filter((w) => !w.startsWith('-'))) {
        if (!operand.startsWith('/') || /[*?[$]/.test(operand)) continue;
        const target = posix.normalize(operand).replace(/\/+$/, '');
        for (const [path, from] of this.#added) {
          if (path === target || (recursive && path.startsWith(target + '/') && target !== '')) {
            warn('FileRemovedInLaterStep', `${path} is added by ${from.kind} on line ${from.line} and removed by this RUN: its bytes stay in the earlier layer (use RUN --mount=type=bind, or a multi-stage build)`);
            this.#added.delete(path);
          }
        }
      }
    }
  }
}

/**
 * The simple commands of a shell text, as word lists: split at `&&`, `||`, `;`, `|`, `&`, newlines
 * and parentheses; quotes stripped from words; leading `VAR=value` assignments and wrappers
 * (sudo, env, exec, command, time, nohup) dropped.
 */
export function simpleCommands(text: string): string[][] {
  const out: string[][] = [];
  for (const part of text.replace(/\\\n/g, ' ').split(/&&|\|\||[;|&\n()`]/)) {
    const words = part.trim().split(/\s+/).filter(Boolean).map((w) => w.replace(/^['"]|['"]$/g, ''));
    while (words.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!) || ['sudo', 'env', 'exec', 'command', 'time', 'nohup', '-y', '-E'].includes(words[0]!))) words.shift();
    if (words.length) out.push(words);
  }
  return out;
}

function isApt(c: readonly string[]): boolean {
  return c[0] === 'apt-get' || c[0] === 'apt';
}

/** Where `pip` is in a command (`pip`, `pip3`, `pip3.12`, `python -m pip`), or -1; uv's pip has its own cache. */
function pipAt(c: readonly string[]): number {
  if (/^pip(\d+(\.\d+)?)?$/.test(c[0]!)) return 0;
  if (/^python(\d+(\.\d+)?)?$/.test(c[0]!) && c[1] === '-m' && c[2] === 'pip') return 2;
  return -1;
}

/** The target of a `type=cache` or `type=tmpfs` RUN --mount, normalized; undefined for other mounts. */
function mountTarget(spec: string): string | undefined {
  const fields = new Map<string, string>();
  for (const f of spec.split(',')) {
    const eq = f.indexOf('=');
    fields.set((eq < 0 ? f : f.slice(0, eq)).trim().toLowerCase(), eq < 0 ? '' : f.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  if (type !== 'cache' && type !== 'tmpfs') return undefined;
  const target = fields.get('target') ?? fields.get('dst') ?? fields.get('destination');
  return target && target.startsWith('/') ? posix.normalize(target).replace(/(.)\/+$/, '$1') : undefined;
}
