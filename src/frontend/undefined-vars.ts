import type { SourceLocation } from '../errors.js';
import type { Instruction } from './instructions.js';
import { editDistance } from './parse.js';
import { argValues, expansionEnv, PLATFORM_ARGS, type ConvertEnv, type StageState } from './stage-state.js';

/** Args every stage may use undeclared (BuildKit's non-env args: the automatic platform ones). */
const PREDEFINED = new Set([...PLATFORM_ARGS, 'TARGETSTAGE']);

/** The words of `ins` the frontend expands (BuildKit's SupportsSingleWordExpansion commands; RUN, CMD and ENTRYPOINT are the shell's). */
function expandedWords(ins: Instruction): string[] {
  switch (ins.kind) {
    case 'ENV':
    case 'LABEL':
      return ins.pairs.flatMap((p) => [p.key, p.value]);
    case 'ARG':
      return ins.args.flatMap((a) => (a.value !== undefined ? [a.value] : []));
    case 'COPY':
    case 'ADD':
      return [...ins.sources, ins.dest, ...[ins.chown, ins.chmod, ins.from].filter((x): x is string => x !== undefined)];
    case 'WORKDIR':
      return [ins.path];
    case 'USER':
      return [ins.user];
    case 'STOPSIGNAL':
      return [ins.signal];
    case 'EXPOSE':
      return [...ins.ports];
    case 'VOLUME':
      return [...ins.volumes];
    default:
      return [];
  }
}

/**
 * BuildKit's UndefinedVar check for one instruction, before it is converted (its words expand
 * with the environment as it was): a `$NAME` that is neither in the stage's environment (the
 * base image's and this stage's ENV, ARGs with a value) nor a declared ARG nor predefined.
 * Reports through `lint` with a did-you-mean from the names that are defined.
 */
export function checkUndefinedVars(ins: Instruction, st: StageState, env: ConvertEnv, lint: (rule: string, message: string, loc: SourceLocation) => void): void {
  const words = expandedWords(ins);
  if (words.length === 0) return;
  const vars = expansionEnv(st);
  // argValues has every declared key (a Set of st.args per instruction was O(n²) in ARG lines).
  const declared = argValues(st);
  const undefinedNames = new Set<string>();
  for (const w of words) {
    try {
      for (const name of env.lexer.process(w, vars).unmatched) if (!declared.has(name) && !PREDEFINED.has(name)) undefinedNames.add(name);
    } catch {
      // A malformed word is the conversion's error to report, with its own message.
    }
  }
  if (undefinedNames.size === 0) return;
  const known = [...new Set([...(st.config.config.Env ?? []).map((e) => e.split('=', 1)[0]!), ...declared.keys()])];
  for (const name of undefinedNames) {
    const near = known.map((k) => [k, editDistance(k.toLowerCase(), name.toLowerCase())] as const).filter(([, d]) => d <= 2).sort((a, b) => a[1] - b[1])[0]?.[0];
    lint('UndefinedVar', `Usage of undefined variable '$${name}'${near ? ` (did you mean $${near}?)` : ''}`, ins.location);
  }
}
