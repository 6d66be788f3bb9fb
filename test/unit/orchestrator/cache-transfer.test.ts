import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BuildError } from '../../../src/errors.js';
import { parseCacheFrom, parseCacheTo } from '../../../src/orchestrator/cache-transfer/cache-spec.js';
import { CACHE_CONFIG_MEDIA_TYPE, cacheConfig, cacheManifest, parseCacheConfig } from '../../../src/orchestrator/cache-transfer/cache-manifest.js';
import { cacheRecords } from '../../../src/orchestrator/cache-transfer/cache-export.js';
import { sha256, type Digest } from '../../../src/oci/digest.js';
import type { Descriptor } from '../../../src/oci/image.js';
import type { RootfsResult } from '../../../src/solver/graph.js';

const test = suite('build/cache-transfer: --cache-to/--cache-from specs, record selection, cache config');

test('specs parse into typed values', () => {
  assert.equal(parseCacheTo('type=registry,ref=127.0.0.1:5000/c:t,mode=max'), { type: 'registry', ref: '127.0.0.1:5000/c:t', mode: 'max' });
  assert.equal(parseCacheTo('type=registry,ref=r/c:t'), { type: 'registry', ref: 'r/c:t', mode: 'min' });
  assert.equal(parseCacheTo('type=local,dest="/a,b",mode=min'), { type: 'local', dest: '/a,b', mode: 'min' });
  assert.equal(parseCacheTo('type=inline'), { type: 'inline' });
  assert.equal(parseCacheTo('type=registry,ref=r/c:t,compression=zstd,compression-level=9'), { type: 'registry', ref: 'r/c:t', mode: 'min', compression: { compression: 'zstd', level: 9 } });
  assert.equal(parseCacheTo('type=local,dest=/d,compression=uncompressed,force-compression=true'), { type: 'local', dest: '/d', mode: 'min', compression: { compression: 'uncompressed', force: true } });
  assert.equal(parseCacheFrom('type=registry,ref=r/c:t'), { type: 'registry', ref: 'r/c:t' });
  assert.equal(parseCacheFrom('r/c:t'), { type: 'registry', ref: 'r/c:t' }, 'a bare ref means type=registry');
  assert.equal(parseCacheFrom('type=local,src=/d'), { type: 'local', src: '/d' });
});

test('bad specs are usage errors naming the flag', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => parseCacheTo('ref=x'), /--cache-to "ref=x": missing type=/],
    [() => parseCacheTo('type=gha'), /unsupported type "gha"/],
    [() => parseCacheTo('type=registry,ref=r/c::t'), /ref "r\/c::t" is not a valid reference/],
    [() => parseCacheTo('type=local,dest=/x,dest=/y'), /"dest" given more than once/],
    [() => parseCacheTo('type=local,src=/x'), /unknown key "src"/],
    [() => parseCacheTo('type=local,dest=/x,compression=lz4'), /--cache-to "type=local,dest=\/x,compression=lz4": compression="lz4": expected gzip, zstd or uncompressed/],
    [() => parseCacheTo('type=registry,ref=r/c:t,compression-level=99'), /compression-level="99"/],
    [() => parseCacheTo('type=inline,compression=zstd'), /unknown key "compression"/],
    [() => parseCacheFrom('type=inline'), /--cache-from "type=inline": unsupported type/],
    [() => parseCacheFrom('type=local,src='), /needs src=/],
  ];
  for (const [fn, re] of cases) {
    try {
      fn();
      assert.unreachable(String(re));
    } catch (e) {
      assert.instance(e, BuildError);
      assert.is((e as BuildError).code, 'USAGE');
      assert.match((e as Error).message, re);
    }
  }
});

const d = (s: string) => sha256(s);
const rootfs = (...ids: Digest[]): RootfsResult => ({ kind: 'rootfs', layers: ids.map((diffId) => ({ diffId })) });

test('mode=min keeps the records of the final chain (prefixes of the final layers); max keeps all', () => {
  const [base, a, b, other] = [d('base'), d('a'), d('b'), d('other')];
  const used = new Map<Digest, RootfsResult>([
    [d('k-from'), rootfs(base)],
    [d('k-a'), rootfs(base, a)],
    [d('k-b'), rootfs(base, a, b)],
    [d('k-build-stage'), rootfs(base, other)],
  ]);
  const final = rootfs(base, a, b);
  assert.equal(cacheRecords(used, [final], 'min').map((r) => r.key).sort(), [d('k-from'), d('k-a'), d('k-b')].sort());
  assert.is(cacheRecords(used, [final], 'max').length, 4);
});

test('cache config: sorted by key, one blob per diffID, manifest lists each blob once; parse rejects foreign data', () => {
  const blob = (s: string): Descriptor => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d(`blob-${s}`), size: 10 });
  const blobs = new Map<Digest, Descriptor>([
    [d('x'), blob('x')],
    [d('y'), blob('y')],
  ]);
  const recs = [
    { key: d('2'), layers: [d('x'), d('y')] },
    { key: d('1'), layers: [d('x')] },
  ];
  const cfg = cacheConfig(recs, blobs);
  assert.equal(
    cfg.records.map((r) => r.key),
    [d('1'), d('2')].sort(),
  );
  assert.equal(cacheConfig([...recs].reverse(), blobs), cfg, 'same records, same config');
  const m = cacheManifest(cfg, { digest: d('cfg'), size: 3 }) as { config: Descriptor; layers: Descriptor[] };
  assert.is(m.config.mediaType, CACHE_CONFIG_MEDIA_TYPE);
  assert.is(m.layers.length, 2);
  assert.equal(parseCacheConfig(Buffer.from(JSON.stringify(cfg)), 'c'), cfg);
  for (const bad of ['nope', '{"version":2,"records":[],"blobs":{}}', JSON.stringify({ version: 1, records: [{ key: d('1'), layers: [d('z')] }], blobs: {} })]) {
    assert.throws(() => parseCacheConfig(Buffer.from(bad), 'c'), /cache c: not a tsbuild cache/);
  }
});

test.run();
