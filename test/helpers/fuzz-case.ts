import { mutate, Prng } from './dockerfile-mutator.js';

/** One fuzz case: a mutated Dockerfile, ONBUILD triggers of its base image and build args. */
export interface FuzzCase {
  readonly text: string;
  readonly onBuild: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
}

/** Case `i` of run `seed` (over `seeds`, see loadSeeds): depends on nothing else, so one case can be replayed alone. */
export function fuzzCase(seeds: readonly string[], seed: number, i: number): FuzzCase {
  const rnd = new Prng((Math.imul(seed, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0);
  const text = mutate(seeds, rnd);
  // Base-image triggers are input too (from any image a FROM names): a few, mutated lines.
  const onBuild = rnd.next() < 0.15 ? Array.from({ length: 1 + rnd.int(3) }, () => mutate(['RUN true', 'ENV a=${b:-c}', 'COPY --from=0 a b', 'ONBUILD RUN x'], rnd).split('\n')[0]!) : [];
  const buildArgs: Record<string, string> = rnd.next() < 0.2 ? { a: mutate(['x', '${a}', '$a$a'], rnd).slice(0, 100_000) } : {};
  return { text, onBuild, buildArgs };
}
