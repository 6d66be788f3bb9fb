import { Option, type Command } from 'commander';
import { BuildError } from '../errors.js';
import { parseCompressionFields } from '../exporter/export-target.js';
import { DEFAULT_COMPRESSION, type CompressionOptions } from '../oci/layer/layer-compression.js';

/** What `withCompressionFlags` adds to a command's flags. */
export interface CompressionFlags {
  readonly compressionFormat?: string;
  readonly compressionLevel?: string;
  readonly forceCompression?: boolean;
}

/**
 * `push` and `save`: buildah's and podman's flag names (`buildah push --compression-format zstd`)
 * for what a build's image outputs take as BuildKit's keys (`compression=`, `compression-level=`,
 * `force-compression=`), with the same values and meaning: layers already compressed otherwise
 * (a pulled base's gzip) stay as they are unless forced.
 */
export function withCompressionFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--compression-format <format>', 'layer compression: gzip, zstd or uncompressed (default gzip)'))
    .addOption(new Option('--compression-level <n>', 'compression level: gzip 0-9 (default 1), zstd 0-22 (default 3)'))
    .addOption(new Option('--force-compression', 'recompress layers that are already compressed otherwise (a base image\'s)'));
}

/** The compression the flags ask for (gzip at its default level when none); a bad value is a usage error naming the flag. */
export function compressionFromFlags(flags: CompressionFlags): CompressionOptions {
  const fields: Record<string, string | undefined> = {
    compression: flags.compressionFormat,
    'compression-level': flags.compressionLevel,
    'force-compression': flags.forceCompression ? 'true' : undefined,
  };
  const bad = (msg: string): never => {
    // parseCompressionFields names the output key (`compression-level="30": …`): here it is a flag.
    throw new BuildError('USAGE', msg.replace(/^compression=/, '--compression-format ').replace(/^(compression-level|force-compression)=/, '--$1 '));
  };
  return parseCompressionFields((key) => fields[key], bad) ?? DEFAULT_COMPRESSION;
}
