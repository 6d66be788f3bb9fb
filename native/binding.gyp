{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["fsx.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
