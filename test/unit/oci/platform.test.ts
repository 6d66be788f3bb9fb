import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPlatform, parsePlatform } from '../../../src/oci/platform.js';

const test = suite('unit/oci/platform');

test('parsePlatform normalizes as containerd: arm is arm/v7, default variants dropped, aliases', () => {
  const cases: Record<string, string> = {
    'linux/arm': 'linux/arm/v7',
    'linux/arm/7': 'linux/arm/v7',
    'linux/arm/6': 'linux/arm/v6',
    'linux/arm/v6': 'linux/arm/v6',
    'linux/armhf': 'linux/arm/v7',
    'linux/armel': 'linux/arm/v6',
    'linux/arm64/v8': 'linux/arm64',
    'linux/aarch64': 'linux/arm64',
    'linux/arm64/9': 'linux/arm64/v9',
    'linux/x86_64': 'linux/amd64',
    'linux/amd64/v1': 'linux/amd64',
    'linux/amd64/v3': 'linux/amd64/v3',
    'Windows/AMD64': 'windows/amd64',
    'linux/i386': 'linux/386',
  };
  for (const [input, want] of Object.entries(cases)) assert.is(formatPlatform(parsePlatform(input)), want, input);
});

test.run();
