import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CHECK_RULES, dockerfileChecks, type CheckWarning } from '../../../src/frontend/build-checks.js';
import { parseInstruction } from '../../../src/frontend/instructions.js';
import { parseDockerfile } from '../../../src/frontend/parse.js';
import { simpleCommands } from '../../../src/frontend/layer-hygiene-checks.js';

/** tsbuild's own checks for wasted layer space: AptListsNotRemoved, PipCacheNotDisabled, FileRemovedInLaterStep. */
const test = suite('frontend/layer-hygiene-checks');

function checks(text: string): CheckWarning[] {
  const parsed = parseDockerfile(text, '/x/Dockerfile');
  if (parsed.errors.length > 0) throw parsed.errors[0];
  const instructions = parsed.instructions.map((raw) => parseInstruction(raw, parsed.escapeToken));
  return [...dockerfileChecks(text, '/x/Dockerfile', instructions, parsed.warnings, {}).found];
}
const lint = (text: string) => checks(text).map((w) => `${w.rule}@${w.location.line}`);

const cases: [string, string, string[]][] = [
  ['apt-get update without removing the lists', 'FROM debian\nRUN apt-get update && apt-get install -y curl\n', ['AptListsNotRemoved@2']],
  ['apt update, in a continued line', 'FROM debian\nRUN apt update \\\n && apt install -y curl\n', ['AptListsNotRemoved@2']],
  ['lists removed in the same RUN', 'FROM debian\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n', []],
  ['lists removed in a heredoc RUN', 'FROM debian\nRUN <<EOF\napt-get update\napt-get install -y curl\nrm -rf /var/lib/apt/lists/*\nEOF\n', []],
  ['apt lists on a cache mount', 'FROM debian\nRUN --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get update && apt-get install -y curl\n', []],
  ['a bind mount is no excuse', 'FROM debian\nRUN --mount=type=bind,target=/var/lib/apt/lists apt-get update\n', ['AptListsNotRemoved@2']],
  ['apt-get install alone (the lists came earlier)', 'FROM debian\nRUN apt-get install -y curl\n', []],
  ['echo of the words is not apt', 'FROM debian\nRUN echo apt-get update\n', []],
  ['pip install without --no-cache-dir', 'FROM python\nRUN pip install flask\nRUN python3 -m pip install -r req.txt\nRUN pip3.12 install x\n', ['PipCacheNotDisabled@2', 'PipCacheNotDisabled@3', 'PipCacheNotDisabled@4']],
  ['pip install --no-cache-dir', 'FROM python\nRUN pip install --no-cache-dir flask\n', []],
  ['PIP_NO_CACHE_DIR in ENV or inline', 'FROM python\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\nFROM python\nRUN PIP_NO_CACHE_DIR=1 pip install flask\n', []],
  ['ENV of another stage does not count', 'FROM python AS a\nENV PIP_NO_CACHE_DIR=1\nFROM python\nRUN pip install flask\n', ['PipCacheNotDisabled@4']],
  ['pip cache on a cache mount', 'FROM python\nRUN --mount=type=cache,target=/root/.cache/pip pip install flask\nRUN --mount=type=cache,target=/root/.cache pip install x\n', []],
  ['pip cache removed', 'FROM python\nRUN pip install flask && rm -rf /root/.cache\n', []],
  ['uv pip and pip list are not pip install', 'FROM python\nRUN uv pip install flask && pip list\n', []],
  ['COPY then rm in a later RUN', 'FROM busybox\nCOPY big.tar /tmp/big.tar\nRUN tar xf /tmp/big.tar && rm /tmp/big.tar\n', ['FileRemovedInLaterStep@3']],
  ['into a directory, relative to WORKDIR, and rm -r of a parent', 'FROM busybox\nWORKDIR /app\nCOPY a.tgz b.tgz ./pkgs/\nRUN rm -f /app/pkgs/a.tgz\nADD c.tgz /opt/x/c.tgz\nRUN rm -rf /opt/x\n', ['FileRemovedInLaterStep@4', 'FileRemovedInLaterStep@6']],
  ['rm of a parent without -r, of a glob, of a relative path, of a sibling', 'FROM busybox\nCOPY a /d/a\nRUN rm /d; rm /d/*; cd /d && rm a; rm /d/b\n', []],
  ['a bind mount instead of COPY', 'FROM busybox\nRUN --mount=type=bind,source=big.tar,target=/tmp/big.tar tar xf /tmp/big.tar\n', []],
  ['COPY in one stage, rm in another', 'FROM busybox AS a\nCOPY big.tar /tmp/big.tar\nFROM busybox\nRUN rm /tmp/big.tar\n', []],
  ['COPY . /app then rm of a part of it is not flagged (its sources are unknown)', 'FROM busybox\nCOPY . /app\nRUN rm -rf /app/tests\n', []],
  ['COPY to a variable destination is not followed', 'FROM busybox\nARG D=/x\nCOPY f $D/f\nRUN rm /x/f\n', []],
  ['# check=skip= above the RUN skips it; file-wide skip too', '# check=skip=PipCacheNotDisabled\nFROM debian\n# check=skip=AptListsNotRemoved\nRUN apt-get update\nRUN apt-get update\nRUN pip install x\n', ['AptListsNotRemoved@5']],
];
for (const [name, text, want] of cases) {
  test(name, () => {
    assert.equal(lint(text), want);
    for (const w of want) assert.ok(w.split('@')[0]! in CHECK_RULES, `${w} is a known rule`);
  });
}

test('rules are off with skip=all and are not experimental; messages say what to do', () => {
  assert.equal(lint('# check=skip=all\nFROM debian\nRUN apt-get update\n'), []);
  for (const r of ['AptListsNotRemoved', 'PipCacheNotDisabled', 'FileRemovedInLaterStep']) assert.not.ok(CHECK_RULES[r]!.experimental);
  const [w] = checks('FROM busybox\nCOPY big.tar /tmp/big.tar\nRUN rm /tmp/big.tar\n');
  assert.is(w!.message, '/tmp/big.tar is added by COPY on line 2 and removed by this RUN: its bytes stay in the earlier layer (use RUN --mount=type=bind, or a multi-stage build)');
});

test('simpleCommands splits at operators and drops assignments and wrappers', () => {
  assert.equal(simpleCommands('A=1 sudo apt-get update && (cd /x; rm -rf "/y") | tee z'), [['apt-get', 'update'], ['cd', '/x'], ['rm', '-rf', '/y'], ['tee', 'z']]);
});

test.run();
