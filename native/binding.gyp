{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["fsx.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "zstd",
      "sources": ["zstd.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "libraries": ["-lzstd"]
    },
    {
      "target_name": "chroot-exec",
      "type": "executable",
      "sources": ["chroot-exec.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
