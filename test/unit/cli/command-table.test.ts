import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMMAND_MODULES, commandsFor, type CommandKit } from '../../../src/cli/command-table.js';

const kit: CommandKit = { globals: { debug: false }, signal: new AbortController().signal, rawRoot: undefined, setExit: () => undefined };

test('each module defines exactly the verbs the table routes to it, in the same order', async () => {
  for (const m of COMMAND_MODULES) {
    assert.equal((await m.load(kit)).map((c) => c.name()), m.verbs);
  }
});

test('a verb loads its own module only; help and no verb load them all', async () => {
  const names = async (args: string[]) => (await commandsFor(args, kit)).map((c) => c.name());
  assert.equal(await names(['build', '.']), ['build']);
  assert.equal(await names(['du']), ['du', 'prune']);
  assert.equal(await names(['help', 'push']), ['pull', 'push', 'login', 'logout']);
  const all = COMMAND_MODULES.flatMap((m) => m.verbs);
  assert.equal(await names(['help']), all);
  assert.equal(await names(['--help']), all);
  assert.equal(await names([]), all);
});

test.run();
