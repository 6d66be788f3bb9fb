import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkAttestationOutputs, parseOutputSpec, usesOciMediaTypes, type ExportTarget, type ImageTarget } from '../../../src/exporter/export-target.js';
import { BuildError } from '../../../src/errors.js';

const test = suite('parseOutputSpec');

const valid: [string, ExportTarget][] = [
  ['type=oci,dest=x.tar', { type: 'oci', dest: 'x.tar', tar: true }],
  ['type=oci,dest=dir,tar=false', { type: 'oci', dest: 'dir', tar: false }],
  ['type=oci,tar=true,dest=/a/b.tar', { type: 'oci', dest: '/a/b.tar', tar: true }],
  ['type=oci,dest=x.tar,name=hello:1', { type: 'oci', dest: 'x.tar', tar: true, names: ['hello:1'] }],
  ['type=docker,dest=img.tar', { type: 'docker', dest: 'img.tar' }],
  ['type=docker,dest=img.tar,"name=a:1,b:2"', { type: 'docker', dest: 'img.tar', names: ['a:1', 'b:2'] }],
  ['type=local,dest=out', { type: 'local', dest: 'out' }],
  ['type=local,"dest=dir,with,commas"', { type: 'local', dest: 'dir,with,commas' }],
  ['out/dir', { type: 'local', dest: 'out/dir' }],
  ['type=registry,name=localhost:5000/x:y', { type: 'registry', name: 'localhost:5000/x:y' }],
  ['type=registry,name=x,push=true', { type: 'registry', name: 'x' }],
  ['TYPE=local,Dest=o', { type: 'local', dest: 'o' }],
  ['type=tar,dest=rootfs.tar', { type: 'tar', dest: 'rootfs.tar' }],
  ['-', { type: 'tar', dest: '-' }],
  ['type=oci,dest=-', { type: 'oci', dest: '-', tar: true }],
  ['type=docker,dest=-', { type: 'docker', dest: '-' }],
  ['type=oci,dest=x,rewrite-timestamp=false', { type: 'oci', dest: 'x', tar: true, rewriteTimestamp: false }],
  ['type=local,dest=o,rewrite-timestamp=true', { type: 'local', dest: 'o', rewriteTimestamp: true }],
  ['type=registry,name=r,rewrite-timestamp=false', { type: 'registry', name: 'r', rewriteTimestamp: false }],
  ['type=docker,dest=x.tar,oci-mediatypes=false', { type: 'docker', dest: 'x.tar', ociMediaTypes: false }],
  ['type=docker,dest=x.tar,OCI-MediaTypes=true', { type: 'docker', dest: 'x.tar', ociMediaTypes: true }],
  ['type=oci,dest=d,tar=false,oci-mediatypes=false', { type: 'oci', dest: 'd', tar: false, ociMediaTypes: false }],
  ['type=registry,name=r/x:1,oci-mediatypes=false', { type: 'registry', name: 'r/x:1', ociMediaTypes: false }],
  ['type=oci,dest=x,compression=zstd', { type: 'oci', dest: 'x', tar: true, compression: { compression: 'zstd' } }],
  ['type=docker,dest=x,compression=gzip,compression-level=9', { type: 'docker', dest: 'x', compression: { compression: 'gzip', level: 9 } }],
  ['type=registry,name=r,compression=zstd,compression-level=19,force-compression=true', { type: 'registry', name: 'r', compression: { compression: 'zstd', level: 19, force: true } }],
  ['type=registry,name=r,compression=zstd,compression-level=0', { type: 'registry', name: 'r', compression: { compression: 'zstd', level: 3 } }],
  ['type=oci,dest=x,compression=uncompressed,force-compression=false', { type: 'oci', dest: 'x', tar: true, compression: { compression: 'uncompressed' } }],
  ['type=oci,dest=x,compression-level=1', { type: 'oci', dest: 'x', tar: true, compression: { compression: 'gzip', level: 1 } }],
];
for (const [spec, want] of valid) {
  test(`valid: ${spec}`, () => {
    assert.equal(parseOutputSpec(spec), want);
  });
}

const invalid: [string, RegExp][] = [
  ['', /empty/],
  ['dest=x', /missing type/],
  ['type=tarball,dest=x', /unknown type "tarball"/],
  ['type=oci', /needs dest/],
  ['type=oci,dest=x,tar=maybe', /tar="maybe"/],
  ['type=local,dest=x,tar=false', /unknown key "tar" for type=local/],
  ['type=local,dest=x,compression=zstd', /unknown key "compression" for type=local/],
  ['type=docker,dest=x,compression=brotli', /compression="brotli": expected gzip, zstd or uncompressed/],
  ['type=oci,dest=x,compression=gzip,compression-level=10', /compression-level="10": expected an integer from 0 to 9 for gzip/],
  ['type=oci,dest=x,compression=zstd,compression-level=23', /compression-level="23": expected an integer from 0 to 22 for zstd/],
  ['type=registry,name=r,compression-level=fast', /compression-level="fast"/],
  ['type=registry,name=r,force-compression=yes', /force-compression="yes": expected true or false/],
  ['type=registry', /needs name/],
  ['type=local,dest=-', /standard output\) takes an archive/],
  ['type=oci,dest=-,tar=false', /standard output\) takes an archive/],
  ['type=local,dest=a,dest=b', /more than once/],
  ['type=local,"dest=x', /quote/],
  ['type=local,=x', /not key=value/],
  ['type=tar,dest=x,rewrite-timestamp=yes', /rewrite-timestamp="yes": expected true or false/],
  ['type=docker,dest=x,oci-mediatypes=yes', /oci-mediatypes="yes": expected true or false/],
  ['type=registry,name=r/x,oci-mediatypes=', /oci-mediatypes="": expected true or false/],
  ['type=oci,dest=x,oci-mediatypes=true,oci-mediatypes=false', /key "oci-mediatypes" given more than once/],
  ['type=local,dest=x,oci-mediatypes=false', /unknown key "oci-mediatypes" for type=local/],
  ['type=tar,dest=x,oci-mediatypes=true', /unknown key "oci-mediatypes" for type=tar/],
];
for (const [spec, re] of invalid) {
  test(`invalid: ${spec}`, () => {
    try {
      parseOutputSpec(spec);
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, BuildError);
      assert.is((e as BuildError).code, 'USAGE');
      assert.match((e as Error).message, re);
    }
  });
}

// BuildKit's defaults (see usesOciMediaTypes): OCI for oci and registry, Docker's for the docker archive.
const defaults: [string, boolean][] = [
  ['type=oci,dest=x.tar', true],
  ['type=oci,dest=d,tar=false', true],
  ['type=registry,name=r/x:1', true],
  ['type=docker,dest=x.tar', false],
  ['type=docker,dest=x.tar,oci-mediatypes=true', true],
  ['type=oci,dest=x.tar,oci-mediatypes=false', false],
  ['type=registry,name=r/x:1,oci-mediatypes=false', false],
];
for (const [spec, oci] of defaults) {
  test(`media types: ${spec} → ${oci ? 'OCI' : 'Docker'}`, () => {
    assert.is(usesOciMediaTypes(parseOutputSpec(spec) as ImageTarget), oci);
  });
}

test('attestations: refused up front for oci and registry outputs with oci-mediatypes=false, naming the output', () => {
  for (const ok of ['type=oci,dest=x.tar', 'type=registry,name=r/x:1,oci-mediatypes=true', 'type=docker,dest=x.tar,oci-mediatypes=false', 'type=local,dest=d']) {
    checkAttestationOutputs([parseOutputSpec(ok)]);
  }
  try {
    checkAttestationOutputs([parseOutputSpec('type=oci,dest=x.tar'), parseOutputSpec('type=registry,name=r/x:1,oci-mediatypes=false')]);
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, BuildError);
    assert.is((e as BuildError).code, 'USAGE');
    assert.match((e as Error).message, '--output type=registry,name=r/x:1,oci-mediatypes=false: cannot export attestations with "oci-mediatypes=false"');
  }
});

test.run();
