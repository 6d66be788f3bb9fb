import type { AstNode } from './ast.js';
import { goQuote } from './line-parsers.js';

/**
 * BuildKit's `Node.Dump()`: the AST as s-expressions, one `(instr "arg" …)` line per instruction
 * of the root. The format is what BuildKit's parser testfiles `result` pin, so it must not drift.
 */
export function dumpAst(node: AstNode): string {
  let s = node.value.toLowerCase();
  if (node.flags.length > 0) s += ` [${node.flags.map(goQuote).join(' ')}]`;
  for (const c of node.children) s += `(${dumpAst(c)})\n`;
  for (let n = node.next; n; n = n.next) s += ' ' + (n.children.length > 0 ? dumpAst(n) : goQuote(n.value));
  return s.replace(/^[\t\n\v\f\r \u0085\u00a0]+|[\t\n\v\f\r \u0085\u00a0]+$/g, '');
}
