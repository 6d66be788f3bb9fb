/*
 * fsx: the few filesystem calls Node lacks, for layer diff/apply.
 *
 * Node has no mknod and no xattr API. Overlay whiteouts are char devices 0:0, the opaque
 * marker and file capabilities are xattrs, and a layer can hold thousands of them: spawning
 * setfattr/mknod per file costs ~1 ms each, a direct syscall microseconds. All calls are
 * synchronous and never follow a final symlink (l* variants).
 *
 * Errors are thrown as Error with `code` = errno name ("ENOTSUP") and `errno`, the path in
 * the message, like Node's own fs errors.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, NULL, "fsx: Node-API call failed: " #call); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case ENOMEM: return "ENOMEM";
    case ERANGE: return "ERANGE";
    case E2BIG: return "E2BIG";
    case EDQUOT: return "EDQUOT";
    case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP";
    default: return "EUNKNOWN";
  }
}

/* Throws Error("<syscall> <path>: <strerror>") with code and errno set; returns NULL. */
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = errno_name(err);
  char msg[4400];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", code, strerror(err), syscall, path);
  napi_value jmsg, jcode, jerr, jerrno, jsys, jpath;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_error(env, jcode, jmsg, &jerr) != napi_ok) {
    napi_throw_error(env, code, msg);
    return NULL;
  }
  napi_create_int32(env, -err, &jerrno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsys);
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &jpath);
  napi_set_named_property(env, jerr, "errno", jerrno);
  napi_set_named_property(env, jerr, "syscall", jsys);
  napi_set_named_property(env, jerr, "path", jpath);
  napi_throw(env, jerr);
  return NULL;
}

/* Copies a JS string argument into a malloc'd C string; NULL (with a pending exception) on error. */
static char *get_string(napi_env env, napi_value v, const char *what) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "fsx: %s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "fsx: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { /* an embedded NUL would silently address another file */
    free(s);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "fsx: string contains a NUL byte");
    return NULL;
  }
  return s;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "fsx: missing arguments");
    return 0;
  }
  return 1;
}

/* llistxattr(path): string[] */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  char *buf = NULL;
  ssize_t n;
  /* The list can grow between the size query and the read: retry on ERANGE. */
  for (;;) {
    n = llistxattr(path, NULL, 0);
    if (n < 0) break;
    free(buf);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) { free(path); napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
    n = llistxattr(path, buf, (size_t)n);
    if (n >= 0 || errno != ERANGE) break;
  }
  if (n < 0) {
    int err = errno;
    free(buf);
    napi_value r = throw_errno(env, err, "llistxattr", path);
    free(path);
    return r;
  }
  free(path);
  napi_value arr;
  if (napi_create_array(env, &arr) != napi_ok) { free(buf); return NULL; }
  uint32_t idx = 0;
  for (ssize_t off = 0; off < n;) {
    size_t l = strlen(buf + off);
    napi_value name;
    if (napi_create_string_utf8(env, buf + off, l, &name) != napi_ok ||
        napi_set_element(env, arr, idx++, name) != napi_ok) { free(buf); return NULL; }
    off += (ssize_t)l + 1;
  }
  free(buf);
  return arr;
}

/* lgetxattr(path, name): Buffer | null (null when the attribute is absent) */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = get_string(env, argv[1], "name");
  if (!name) { free(path); return NULL; }
  char *buf = NULL;
  ssize_t n;
  for (;;) {
    n = lgetxattr(path, name, NULL, 0);
    if (n < 0) break;
    free(buf);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf) { free(path); free(name); napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
    n = lgetxattr(path, name, buf, (size_t)n);
    if (n >= 0 || errno != ERANGE) break;
  }
  free(name);
  if (n < 0) {
    int err = errno;
    free(buf);
    napi_value r = NULL;
    if (err == ENODATA) napi_get_null(env, &r);
    else r = throw_errno(env, err, "lgetxattr", path);
    free(path);
    return r;
  }
  free(path);
  napi_value result;
  void *data;
  napi_status st = napi_create_buffer_copy(env, (size_t)n, buf, &data, &result);
  free(buf);
  if (st != napi_ok) return NULL;
  return result;
}

/* lsetxattr(path, name, value: Buffer): void */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: value must be a Buffer");
    return NULL;
  }
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  char *name = get_string(env, argv[1], "name");
  if (!name) { free(path); return NULL; }
  int rc = lsetxattr(path, name, data, len, 0);
  int err = errno;
  free(name);
  napi_value r = NULL;
  if (rc != 0) r = throw_errno(env, err, "lsetxattr", path);
  free(path);
  return r;
}

/* mknod(path, mode, major, minor): void; mode carries S_IFCHR/S_IFBLK/S_IFIFO + permissions */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  uint32_t mode, major_, minor_;
  if (napi_get_value_uint32(env, argv[1], &mode) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &major_) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &minor_) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: mode, major and minor must be numbers");
    return NULL;
  }
  char *path = get_string(env, argv[0], "path");
  if (!path) return NULL;
  int rc = mknod(path, (mode_t)mode, makedev(major_, minor_));
  int err = errno;
  napi_value r = NULL;
  if (rc != 0) r = throw_errno(env, err, "mknod", path);
  free(path);
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
