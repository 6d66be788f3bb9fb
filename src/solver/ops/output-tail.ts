/** Keeps the last `max` lines of a process's output, for the error of a failed RUN. */
export class OutputTail {
  readonly #max: number;
  #lines: string[] = [];
  #partial = '';
  constructor(max = 20) {
    this.#max = max;
  }
  push(chunk: Buffer): void {
    const parts = (this.#partial + chunk.toString('utf8')).split('\n');
    this.#partial = parts.pop() ?? '';
    this.#lines.push(...parts);
    if (this.#lines.length > this.#max) this.#lines = this.#lines.slice(-this.#max);
  }
  lines(): string[] {
    const all = this.#partial ? [...this.#lines, this.#partial] : this.#lines;
    return all.slice(-this.#max);
  }
}
