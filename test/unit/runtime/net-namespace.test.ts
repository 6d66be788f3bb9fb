import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readlinkSync } from 'node:fs';
import { createNetNamespace } from '../../../src/runtime/net-namespace.js';

test('a new network namespace, held by our descriptor; verify fails closed once the path no longer leads to it', async () => {
  const ns = await createNetNamespace(new AbortController().signal);
  let closed = false;
  try {
    const at = readlinkSync(ns.path);
    assert.match(at, /^net:\[\d+\]$/);
    assert.is.not(at, readlinkSync('/proc/self/ns/net'), 'not our own namespace');
    await ns.verify();
    await ns.close();
    closed = true;
    // The descriptor is gone (or another file now has its number): never joined.
    try {
      await ns.verify();
      assert.unreachable('verify passed on a closed namespace');
    } catch (e) {
      assert.match((e as Error).message, 'is not the one made for it');
    }
  } finally {
    if (!closed) await ns.close();
  }
});

test.run();
