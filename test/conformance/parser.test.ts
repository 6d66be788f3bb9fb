/**
 * BuildKit parser conformance (conformance README §5): the AST dump of every testfiles/*
 * Dockerfile, the negative files, line numbers, continuation warnings, the line-length limit,
 * directives, heredoc extraction, JSON arrays and the parser's word splitter. One check per
 * vector; failures are collected per set and listed.
 */
import { suite } from 'uvu';
import { readFileSync, readdirSync } from 'node:fs';
import { parseAst, nextValues, type AstNode } from '../../src/frontend/ast.js';
import { dumpAst } from '../../src/frontend/ast-dump.js';
import { DirectiveParser, detectSyntax, parseDirective } from '../../src/frontend/directives.js';
import { chompHeredocContent, heredocsFromLine, parseHeredocToken } from '../../src/frontend/heredoc.js';
import { parseJsonArray, parseWords } from '../../src/frontend/words.js';
import { CONFORMANCE_DIR, diff, runSet } from './report.js';

const DIR = `${CONFORMANCE_DIR}/parser`;
const load = (name: string): any => JSON.parse(readFileSync(`${DIR}/${name}`, 'utf8'));
const test = suite('parser-conformance');

/** Case id → reason it cannot pass yet. Keep empty unless a gap is accepted. */
const KNOWN_FAILURES = new Map<string, string>([]);

test('testfiles: AST dump equals result', () => {
  const names = readdirSync(`${DIR}/testfiles`).sort();
  runSet('testfiles', names, (n) => `testfiles/${n}`, (n) => {
    const text = readFileSync(`${DIR}/testfiles/${n}/Dockerfile`, 'utf8');
    const want = readFileSync(`${DIR}/testfiles/${n}/result`, 'utf8');
    const got = dumpAst(parseAst(text).ast) + '\n';
    return got === want ? undefined : `dump differs:\n${got}--- want\n${want}`;
  }, KNOWN_FAILURES);
});

test('testfiles-negative: parsing fails with a message', () => {
  const names = readdirSync(`${DIR}/testfiles-negative`).sort();
  runSet('testfiles-negative', names, (n) => `negative/${n}`, (n) => {
    const text = readFileSync(`${DIR}/testfiles-negative/${n}/Dockerfile`, 'utf8');
    try {
      parseAst(text);
    } catch (e) {
      return (e as Error).message.length > 0 ? undefined : 'empty error message';
    }
    return 'parsed without error';
  }, KNOWN_FAILURES);
});

test('parse-behavior-cases', () => {
  const data = load('parse-behavior-cases.json');
  const cases = [
    { id: 'lineNumbers', run: (): string | undefined => {
      const c = data.lineNumbers;
      const { ast } = parseAst(readFileSync(`${DIR}/${c.file}`, 'utf8'));
      return diff(
        { start: ast.startLine, end: ast.endLine, count: ast.children.length, children: ast.children.map((n) => [n.startLine, n.endLine]) },
        { start: c.expect.rootStartLine, end: c.expect.rootEndLine, count: c.expect.childCount, children: c.expect.children },
      );
    } },
    { id: 'emptyContinuationWarnings', run: (): string | undefined => {
      const c = data.emptyContinuationWarnings;
      const { warnings } = parseAst(c.dockerfile);
      if (warnings.length !== c.expect.warningCount) return `${warnings.length} warnings, want ${c.expect.warningCount}`;
      for (const [i, w] of (c.expect.warnings as any[]).entries()) {
        for (const s of w.shortContains) if (!warnings[i]!.short.includes(s)) return `warning ${i} ${JSON.stringify(warnings[i]!.short)} lacks ${JSON.stringify(s)}`;
        if (w.detail0Contains && !warnings[i]!.detail[0]?.includes(w.detail0Contains)) return `warning ${i} detail lacks ${w.detail0Contains}`;
      }
      return undefined;
    } },
    { id: 'lineTooLong', run: (): string | undefined => {
      const c = data.lineTooLong;
      const text = c.dockerfileTemplate.replace(c.placeholder, c.fill.char.repeat(c.fill.count));
      try {
        parseAst(text);
      } catch (e) {
        return diff((e as Error).message, c.expect.errorEquals);
      }
      return 'parsed without error';
    } },
  ];
  runSet('parse-behavior-cases', cases, (c) => c.id, (c) => c.run(), KNOWN_FAILURES);
});

const heredocView = (n: AstNode): unknown =>
  n.heredocs.length === 0 ? null : n.heredocs.map((h) => ({ name: h.name, content: h.content, expand: h.expand, chomp: h.chomp, fileDescriptor: h.fileDescriptor }));

test('heredoc-cases', () => {
  const data = load('heredoc-cases.json');
  const extract = data.parseExtractsHeredoc;
  const parsed = parseAst(extract.dockerfile).ast;
  runSet('heredoc/parseExtractsHeredoc', extract.children as any[], (c) => `parseExtractsHeredoc/${c.childIndex}`,
    (c) => diff(heredocView(parsed.children[c.childIndex]!), c.heredocs), KNOWN_FAILURES);

  const json = parseAst(data.jsonFormHasNoHeredocs.dockerfile).ast;
  runSet('heredoc/jsonFormHasNoHeredocs', data.jsonFormHasNoHeredocs.childIndexesWithoutHeredocs as number[], (i) => `jsonFormHasNoHeredocs/${i}`,
    (i) => diff(heredocView(json.children[i]!), null), KNOWN_FAILURES);

  runSet('heredoc/chomp', data.chomp as any[], (c) => `chomp/${JSON.stringify(c.input)}`, (c) => diff(chompHeredocContent(c.input), c.expected), KNOWN_FAILURES);

  runSet('heredoc/parseHeredocToken', data.parseHeredocToken as any[], (c) => `parseHeredocToken/${JSON.stringify(c.input)}`, (c) => {
    let got: unknown;
    try {
      const h = parseHeredocToken(c.input);
      got = h ? { name: h.name } : { heredoc: null };
    } catch {
      got = { error: true };
    }
    return diff(got, c.expect);
  }, KNOWN_FAILURES);

  runSet('heredoc/heredocsFromLine', data.heredocsFromLine as any[], (c) => `heredocsFromLine/${c.line}`,
    (c) => diff(heredocsFromLine(c.line).map((h) => h.name), c.heredocNames), KNOWN_FAILURES);
});

test('directive-cases', () => {
  const cases = load('directive-cases.json') as any[];
  runSet('directive-cases', cases, (c) => `${c.api}${c.directive ? `(${c.directive})` : ''}/${JSON.stringify(c.input)}`, (c) => {
    if (c.api === 'DirectiveParser.ParseAll') {
      return diff(new DirectiveParser().parseAll(c.input).map((d) => ({ name: d.name, value: d.value })), c.expect.directives);
    }
    const found = c.api === 'DetectSyntax' ? detectSyntax(c.input) : parseDirective(c.directive, c.input);
    const e = c.expect;
    if (!e.found) return found === undefined ? undefined : `found ${JSON.stringify(found)}`;
    if (!found) return 'not found';
    const want = e.ref ?? e.value;
    if (want !== undefined && found.ref !== want) return `ref ${found.ref}, want ${want}`;
    if (e.cmdline !== undefined && found.cmdline !== e.cmdline) return `cmdline ${found.cmdline}, want ${e.cmdline}`;
    if (e.line !== undefined && found.line !== e.line) return `line ${found.line}, want ${e.line}`;
    return undefined;
  }, KNOWN_FAILURES);
});

test('json-array-cases', () => {
  const cases = load('json-array-cases.json') as any[];
  runSet('json-array-cases', cases, (c) => `json/${c.input}`, (c) => {
    try {
      const got = parseJsonArray(c.input);
      return c.valid ? diff(got, c.expected) : `accepted ${JSON.stringify(got)}`;
    } catch (e) {
      return c.valid ? `rejected: ${(e as Error).message}` : diff((e as Error).message, c.error);
    }
  }, KNOWN_FAILURES);
});

test('parse-words-cases', () => {
  const cases = load('parse-words-cases.json') as any[];
  runSet('parse-words-cases', cases, (c) => `words/${c.input}`, (c) => diff(parseWords(c.input, '\\'), c.expected), KNOWN_FAILURES);
});

test('ONBUILD keeps its trigger as a child node', () => {
  const { ast } = parseAst('FROM x\nONBUILD RUN echo test\n');
  runSet('onbuild-shape', [ast.children[1]!], () => 'onbuild', (n) => diff([n.value, nextValues(n), dumpAst(n)], ['ONBUILD', [''], 'onbuild (run "echo test")']), KNOWN_FAILURES);
});

test.run();
