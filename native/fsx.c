/*
 * fsx: the few filesystem calls Node lacks, for layer diff/apply, and the one way tsbuild
 * resolves a path inside an untrusted tree (open_in_root).
 *
 * Node has no mknod and no xattr API. Overlay whiteouts are char devices 0:0, the opaque
 * marker and file capabilities are xattrs, and a layer can hold thousands of them: spawning
 * setfattr/mknod per file costs ~1 ms each, a direct syscall microseconds. All calls are
 * synchronous and never follow a final symlink (l* variants).
 *
 * mountOverlay uses the new mount API (fsopen/fsconfig), which alone can pass overlay's
 * layers one by one (`lowerdir+`, Linux 6.8): mount(2)'s single option page caps an image at
 * ~137 layers where overlay stacks 500.
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
#include <stdbool.h>
#include <limits.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/mount.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

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
    case EXDEV: return "EXDEV";
    case EAGAIN: return "EAGAIN";
    case ENOSYS: return "ENOSYS";
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

/*
 * open_in_root: an O_PATH descriptor for `path` resolved inside the directory `root`, as the
 * kernel would after chroot(root): absolute symlinks and ".." never leave it. This is the
 * primitive runc's and umoci's securejoin are built on. With `no_symlinks` any symlink on the
 * way fails with ELOOP; with `nofollow` a final symlink is opened itself, not followed.
 *
 * openat2(RESOLVE_IN_ROOT) does it in the kernel, race-free. Kernels before 5.6 (ENOSYS) and
 * seccomp profiles that refuse openat2 (EPERM/ENOSYS) get walk_in_root below, which resolves
 * one component at a time from descriptors it holds, so a rename elsewhere cannot move it out.
 */
#define MAX_SYMLINKS 40

static int walk_in_root(int rootfd, const char *path, int nofollow, int no_symlinks) {
  size_t cap = 64, depth = 0;
  int *stack = malloc(cap * sizeof(int));
  char *rest = strdup(path);
  if (!stack || !rest) { free(stack); free(rest); errno = ENOMEM; return -1; }
  stack[0] = rootfd; /* never closed here: the caller owns it */
  int links = 0, err = 0;
  char *p = rest;
  for (;;) {
    while (*p == '/') p++;
    if (!*p) break;
    char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    int last = 1;
    for (char *q = p + len; *q; q++) if (*q != '/') { last = 0; break; }
    char comp[NAME_MAX + 1];
    if (len > NAME_MAX) { err = ENAMETOOLONG; break; }
    memcpy(comp, p, len);
    comp[len] = 0;
    p += len;
    if (strcmp(comp, ".") == 0) continue;
    if (strcmp(comp, "..") == 0) { /* the directory we came from, never above root */
      if (depth > 0) close(stack[depth--]);
      continue;
    }
    int fd = openat(stack[depth], comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) { err = errno; break; }
    struct stat st;
    if (fstat(fd, &st) != 0) { err = errno; close(fd); break; }
    if (S_ISLNK(st.st_mode) && !(last && nofollow)) {
      if (no_symlinks || ++links > MAX_SYMLINKS) { err = ELOOP; close(fd); break; }
      char target[PATH_MAX];
      ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
      close(fd);
      if (n < 0) { err = errno; break; }
      target[n] = 0;
      if (target[0] == '/') while (depth > 0) close(stack[depth--]);
      size_t rl = strlen(p);
      char *next = malloc((size_t)n + 1 + rl + 1);
      if (!next) { err = ENOMEM; break; }
      memcpy(next, target, (size_t)n);
      next[n] = '/';
      memcpy(next + n + 1, p, rl + 1);
      free(rest);
      rest = p = next;
      continue;
    }
    if (!last && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) { err = ENOTDIR; close(fd); break; }
    if (depth + 1 >= cap) {
      int *grown = realloc(stack, cap * 2 * sizeof(int));
      if (!grown) { err = ENOMEM; close(fd); break; }
      stack = grown;
      cap *= 2;
    }
    stack[++depth] = fd;
  }
  int result = -1;
  if (!err) {
    if (depth > 0) { result = stack[depth--]; }
    else { result = openat(rootfd, ".", O_PATH | O_CLOEXEC); if (result < 0) err = errno; }
  }
  while (depth > 0) close(stack[depth--]);
  free(stack);
  free(rest);
  if (err) { errno = err; return -1; }
  return result;
}

enum { MODE_AUTO = 0, MODE_KERNEL = 1, MODE_WALK = 2 };

static int open_in_root(const char *root, const char *path, int nofollow, int no_symlinks, int mode) {
  int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return -1;
  int fd = -1, err = 0;
  if (mode != MODE_WALK) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (no_symlinks ? RESOLVE_NO_SYMLINKS : 0);
    /* EAGAIN: a concurrent rename raced a ".." (the kernel refuses rather than risk it). */
    for (int tries = 0; tries < 8; tries++) {
      fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
      if (fd >= 0 || errno != EAGAIN) break;
    }
    err = fd < 0 ? errno : 0;
  }
  if (mode == MODE_WALK || (mode == MODE_AUTO && fd < 0 && (err == ENOSYS || err == EPERM || err == EAGAIN))) {
    fd = walk_in_root(rootfd, path, nofollow, no_symlinks);
    err = fd < 0 ? errno : 0;
  }
  close(rootfd);
  errno = err;
  return fd;
}

/* openInRoot(root, path, nofollow: boolean, noSymlinks: boolean, mode: 0 auto | 1 kernel | 2 walk): fd */
static napi_value js_open_in_root(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  bool nofollow, no_symlinks;
  uint32_t mode;
  if (napi_get_value_bool(env, argv[2], &nofollow) != napi_ok || napi_get_value_bool(env, argv[3], &no_symlinks) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &mode) != napi_ok || mode > MODE_WALK) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: nofollow and noSymlinks must be booleans, mode 0, 1 or 2");
    return NULL;
  }
  char *root = get_string(env, argv[0], "root");
  if (!root) return NULL;
  char *path = get_string(env, argv[1], "path");
  if (!path) { free(root); return NULL; }
  int fd = open_in_root(root, path, nofollow, no_symlinks, (int)mode);
  int err = errno;
  napi_value r = NULL;
  if (fd < 0) {
    char shown[4200];
    snprintf(shown, sizeof shown, "%s (in %s)", path, root);
    r = throw_errno(env, err, "openat2", shown);
  } else {
    napi_create_int32(env, fd, &r);
  }
  free(root);
  free(path);
  return r;
}

/* Appends what the fs context logged ("e overlay: …") to msg, so the user sees the kernel's reason. */
static void read_fs_log(int fsfd, char *msg, size_t size) {
  char line[512];
  for (int i = 0; i < 8; i++) {
    ssize_t n = read(fsfd, line, sizeof line - 1);
    if (n <= 0) break;
    line[n] = '\0';
    size_t used = strlen(msg);
    snprintf(msg + used, size - used, "%s%s", used ? "; " : "", line);
  }
}

/*
 * mountOverlay(root, target, lowers: string[] (top first), upper: string|null, work: string|null,
 *              options: string[] ("key" or "key=value")): undefined
 * Paths are relative to `root`, reached through an O_PATH fd (/proc/self/fd/N/...), so each
 * fsconfig value stays under its 256-byte limit whatever the root's length. Throws ENOSYS when
 * the kernel has no new mount API or no `lowerdir+` (before 6.8): the caller falls back to mount(8).
 */
static napi_value js_mount_overlay(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  napi_value result = NULL;
  char *root = NULL, *target = NULL, *upper = NULL, *work = NULL, *val = NULL;
  int rootfd = -1, fsfd = -1, mfd = -1;
  uint32_t nlower = 0, nopt = 0;
  napi_valuetype t;
  if (napi_get_array_length(env, argv[2], &nlower) != napi_ok || napi_get_array_length(env, argv[5], &nopt) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: lowers and options must be arrays");
    return NULL;
  }
  if (!(root = get_string(env, argv[0], "root")) || !(target = get_string(env, argv[1], "target"))) goto out;
  napi_typeof(env, argv[3], &t);
  if (t != napi_null && !(upper = get_string(env, argv[3], "upper"))) goto out;
  napi_typeof(env, argv[4], &t);
  if (t != napi_null && !(work = get_string(env, argv[4], "work"))) goto out;

  char msg[4096] = "";
  char via[300];
  const char *failed = "fsopen";
  rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) { result = throw_errno(env, errno, "open", root); goto out; }
  fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0) { result = throw_errno(env, errno == EPERM ? EPERM : ENOSYS, "fsopen", "overlay"); goto out; }
  for (uint32_t i = 0; i < nlower; i++) {
    napi_value el;
    napi_get_element(env, argv[2], i, &el);
    if (!(val = get_string(env, el, "lower"))) goto out;
    snprintf(via, sizeof via, "/proc/self/fd/%d/%s", rootfd, val);
    free(val);
    val = NULL;
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", via, 0) < 0) {
      int err = errno;
      /* The first lower refused as an unknown key: a kernel before lowerdir+ (6.8). */
      if (i == 0 && err == EINVAL) { read_fs_log(fsfd, msg, sizeof msg); result = throw_errno(env, ENOSYS, "fsconfig lowerdir+", msg); goto out; }
      read_fs_log(fsfd, msg, sizeof msg);
      snprintf(via + strlen(via), sizeof via - strlen(via), " (layer %u of %u)", i + 1, nlower);
      failed = "fsconfig lowerdir+";
      errno = err;
      goto fail;
    }
  }
  const char *keys[2] = {"upperdir", "workdir"};
  char *dirs[2] = {upper, work};
  for (int k = 0; k < 2; k++) {
    if (!dirs[k]) continue;
    snprintf(via, sizeof via, "/proc/self/fd/%d/%s", rootfd, dirs[k]);
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, keys[k], via, 0) < 0) { failed = keys[k]; goto fail; }
  }
  for (uint32_t i = 0; i < nopt; i++) {
    napi_value el;
    napi_get_element(env, argv[5], i, &el);
    if (!(val = get_string(env, el, "option"))) goto out;
    char *eq = strchr(val, '=');
    int rc;
    if (eq) { *eq = '\0'; rc = fsconfig(fsfd, FSCONFIG_SET_STRING, val, eq + 1, 0); }
    else rc = fsconfig(fsfd, FSCONFIG_SET_FLAG, val, NULL, 0);
    snprintf(via, sizeof via, "%s", val);
    free(val);
    val = NULL;
    if (rc < 0) { failed = "fsconfig"; goto fail; }
  }
  if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) { failed = "fsconfig create"; snprintf(via, sizeof via, "%s", target); goto fail; }
  mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
  if (mfd < 0) { failed = "fsmount"; snprintf(via, sizeof via, "%s", target); goto fail; }
  if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) { failed = "move_mount"; snprintf(via, sizeof via, "%s", target); goto fail; }
  napi_get_undefined(env, &result);
  goto out;
fail: {
    int err = errno;
    read_fs_log(fsfd, msg, sizeof msg);
    char shown[4500];
    snprintf(shown, sizeof shown, "%s%s%s", via, msg[0] ? ": " : "", msg);
    result = throw_errno(env, err, failed, shown);
  }
out:
  if (mfd >= 0) close(mfd);
  if (fsfd >= 0) close(fsfd);
  if (rootfd >= 0) close(rootfd);
  free(root); free(target); free(upper); free(work); free(val);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"openInRoot", NULL, js_open_in_root, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mountOverlay", NULL, js_mount_overlay, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
