{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["fsx.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "chroot-exec",
      "type": "executable",
      "sources": ["chroot-exec.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
