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
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <openssl/evp.h>

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
    case EBUSY: return "EBUSY";
    default: return "EUNKNOWN";
  }
}

/* Error("<CODE>: <strerror>, <syscall> '<path>'") with code, errno, syscall and path set, or NULL. */
static napi_value errno_error(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = errno_name(err);
  char msg[4400];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", code, strerror(err), syscall, path);
  napi_value jmsg, jcode, jerr, jerrno, jsys, jpath;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_error(env, jcode, jmsg, &jerr) != napi_ok) {
    return NULL;
  }
  napi_create_int32(env, -err, &jerrno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsys);
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &jpath);
  napi_set_named_property(env, jerr, "errno", jerrno);
  napi_set_named_property(env, jerr, "syscall", jsys);
  napi_set_named_property(env, jerr, "path", jpath);
  return jerr;
}

/* Rejects `deferred` with a plain Error saying `what`. */
static void reject_with(napi_env env, napi_deferred deferred, const char *what) {
  napi_value msg, err;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &err);
  napi_reject_deferred(env, deferred, err);
}

/* Rejects `deferred` with the errno error of `syscall` on `path`, or with `fallback` when that cannot be made. */
static void reject_errno(napi_env env, napi_deferred deferred, int err, const char *syscall, const char *path, const char *fallback) {
  napi_value e = errno_error(env, err, syscall, path);
  if (e) napi_reject_deferred(env, deferred, e);
  else reject_with(env, deferred, fallback);
}

/*
 * Settles the promise of a job that resolves to undefined: rejected with `cancelled` when the
 * job did not run, with the errno error of `syscall` on `path` when `err` is set.
 */
static void settle_void(napi_env env, napi_status status, napi_deferred deferred, int err, const char *syscall, const char *path, const char *cancelled) {
  if (status != napi_ok) {
    reject_with(env, deferred, cancelled);
  } else if (err) {
    reject_errno(env, deferred, err, syscall, path, strerror(err));
  } else {
    napi_value result;
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, deferred, result);
  }
}

/* Throws Error("<syscall> <path>: <strerror>") with code and errno set; returns NULL. */
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  napi_value jerr = errno_error(env, err, syscall, path);
  if (jerr) napi_throw(env, jerr);
  else napi_throw_error(env, errno_name(err), strerror(err));
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

/*
 * Copies the `count` strings of the JS array `arr` into names[]; 0 (an exception pending) on
 * error. *filled counts the strings copied so far, for the caller's free on either outcome.
 */
static int get_names(napi_env env, napi_value arr, uint32_t count, char **names, uint32_t *filled) {
  for (uint32_t i = 0; i < count; i++) {
    napi_value el;
    if (napi_get_element(env, arr, i, &el) != napi_ok || !(names[i] = get_string(env, el, "name"))) return 0;
    *filled = i + 1;
  }
  return 1;
}

/*
 * The tail of every call here that works in the thread pool: makes the promise and queues
 * `execute` (then `complete`) on `job`. NULL, with an exception naming `what`, when that
 * failed: nothing is queued, *work is left unset, and the caller frees its job.
 */
static napi_value queue_job(napi_env env, const char *what, napi_async_execute_callback execute, napi_async_complete_callback complete,
                            void *job, napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, resource_name;
  if (napi_create_promise(env, deferred, &promise) == napi_ok &&
      napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &resource_name) == napi_ok &&
      napi_create_async_work(env, NULL, resource_name, execute, complete, job, work) == napi_ok) {
    if (napi_queue_async_work(env, *work) == napi_ok) return promise;
    napi_delete_async_work(env, *work);
  }
  *work = NULL;
  char msg[96];
  snprintf(msg, sizeof msg, "fsx: could not queue %s", what);
  napi_throw_error(env, NULL, msg);
  return NULL;
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

/*
 * copyFiles(srcDir, dstDir, names: string[], uid, gid): Promise<Uint8Array>
 *
 * COPY of the regular files of one directory in one thread-pool job. Per file, Node's fs
 * costs a pool round trip for each of lstat, copyFile, lchown, chmod, llistxattr and lutimes
 * (with a full path walk each); a tree of 100k small files spends most of its time there.
 * Here each file is opened once, relative to the two directory descriptors, and its data,
 * owner (uid/gid; -1 keeps the source's), mode, xattrs (overlay's own left out) and atime/mtime
 * (to the nanosecond) are set on the open descriptor.
 *
 * Only the simple case is done here; status[i] is COPY_DONE, or COPY_DEFER for the caller to
 * copy that name its general way: not a regular file, a file with several links (hardlinks
 * are matched across the whole copy), an existing destination (replaced by the caller), or an
 * owner the user namespace does not map (EINVAL; the caller knows the rootless policy).
 * Every name must be a single path component: it is opened with O_NOFOLLOW under the
 * directory descriptor, so nothing is resolved outside the two directories, which the caller
 * resolved inside their roots and opens here without following a final symlink.
 * Data moves in the kernel: FICLONE (a reflink, on filesystems that share extents), else
 * copy_file_range, else sendfile; memory does not grow with file sizes.
 * The first other error rejects the whole call (names before it are copied, later ones not).
 */
enum { COPY_DONE = 0, COPY_DEFER = 1 };

struct copy_job {
  char *src_dir, *dst_dir;
  char **names;
  uint32_t count;
  int64_t uid, gid;
  uint8_t *status;
  int err;
  const char *err_syscall;
  char err_path[4200];
  napi_deferred deferred;
  napi_async_work work;
};

static int is_overlay_xattr(const char *name) {
  return strncmp(name, "trusted.overlay.", 16) == 0 || strncmp(name, "user.overlay.", 13) == 0;
}

/* What a job learned about the filesystems: a method that failed once is not tried again. */
struct copy_methods {
  int no_clone, no_cfr;
};

/* Copies `size` bytes of `in` to `out`; returns 0 or -1 with errno set. */
static int copy_data(int in, int out, off_t size, struct copy_methods *m) {
  if (size == 0) return 0;
  if (!m->no_clone) {
    if (ioctl(out, FICLONE, in) == 0) return 0;
    if (errno != EXDEV && errno != EOPNOTSUPP && errno != EINVAL && errno != ENOTTY && errno != EPERM) return -1;
    m->no_clone = 1;
  }
  off_t done = 0;
  if (!m->no_cfr) {
    while (done < size) {
      ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(size - done), 0);
      if (n < 0) {
        if (done == 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS || errno == EPERM)) { m->no_cfr = 1; break; }
        return -1;
      }
      if (n == 0) break; /* shrank while copying: what is there is copied */
      done += n;
    }
    if (!m->no_cfr) return 0;
  }
  off_t off = 0;
  while (off < size) {
    ssize_t n = sendfile(out, in, &off, (size_t)(size - off) > 0x7ffff000 ? 0x7ffff000 : (size_t)(size - off));
    if (n < 0) return -1;
    if (n == 0) break;
  }
  return 0;
}

/* Copies the xattrs of `in` (but overlay's) to `out`; returns 0 or -1 with errno and *sys set. */
static int copy_xattrs(int in, int out, const char **sys) {
  char stackbuf[1024];
  char *list = stackbuf;
  ssize_t n = flistxattr(in, stackbuf, sizeof stackbuf);
  if (n < 0 && errno == ERANGE) {
    ssize_t want = flistxattr(in, NULL, 0);
    if (want < 0) { *sys = "flistxattr"; return -1; }
    list = malloc((size_t)want + 1);
    if (!list) { errno = ENOMEM; *sys = "flistxattr"; return -1; }
    n = flistxattr(in, list, (size_t)want);
  }
  if (n < 0) {
    if (list != stackbuf) free(list);
    if (errno == ENOTSUP) return 0; /* a source filesystem without xattrs has none to copy */
    *sys = "flistxattr";
    return -1;
  }
  int rc = 0;
  char *value = NULL;
  for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1) {
    const char *name = list + off;
    if (is_overlay_xattr(name)) continue;
    ssize_t vn = fgetxattr(in, name, NULL, 0);
    if (vn < 0) { if (errno == ENODATA) continue; *sys = "fgetxattr"; rc = -1; break; }
    char *grown = realloc(value, (size_t)vn + 1);
    if (!grown) { errno = ENOMEM; *sys = "fgetxattr"; rc = -1; break; }
    value = grown;
    vn = fgetxattr(in, name, value, (size_t)vn);
    if (vn < 0) { if (errno == ENODATA) continue; *sys = "fgetxattr"; rc = -1; break; }
    if (fsetxattr(out, name, value, (size_t)vn, 0) != 0) { *sys = "fsetxattr"; rc = -1; break; }
  }
  free(value);
  if (list != stackbuf) free(list);
  return rc;
}

static int valid_name(const char *name) {
  return name[0] && strchr(name, '/') == NULL && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static void copy_execute(napi_env env, void *data) {
  (void)env;
  struct copy_job *job = data;
  struct copy_methods methods = {0, 0};
  int srcfd = -1, dstfd = -1, in = -1, out = -1;
  const char *sys = NULL;
  const char *where = NULL;
  srcfd = open(job->src_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (srcfd < 0) { sys = "open"; where = job->src_dir; goto fail; }
  dstfd = open(job->dst_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dstfd < 0) { sys = "open"; where = job->dst_dir; goto fail; }
  for (uint32_t i = 0; i < job->count; i++) {
    const char *name = job->names[i];
    job->status[i] = COPY_DEFER;
    if (!valid_name(name)) { errno = EINVAL; sys = "copyFiles"; where = name; goto fail_name; }
    struct stat st;
    /* Only a regular file is opened: opening a fifo or device could block or have effects. */
    if (fstatat(srcfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) { sys = "lstat"; goto fail_src; }
    if (!S_ISREG(st.st_mode) || st.st_nlink > 1) continue;
    in = openat(srcfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (in < 0) { sys = "open"; goto fail_src; }
    if (fstat(in, &st) != 0) { sys = "fstat"; goto fail_src; }
    if (!S_ISREG(st.st_mode) || st.st_nlink > 1) { close(in); in = -1; continue; } /* replaced meanwhile */
    out = openat(dstfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
      if (errno == EEXIST) { close(in); in = -1; continue; }
      sys = "open"; goto fail_dst;
    }
    if (copy_data(in, out, st.st_size, &methods) != 0) { sys = "copy_file_range"; goto fail_dst; }
    uid_t uid = job->uid < 0 ? st.st_uid : (uid_t)job->uid;
    gid_t gid = job->gid < 0 ? st.st_gid : (gid_t)job->gid;
    if (fchown(out, uid, gid) != 0) {
      if (errno == EINVAL) { /* an id this user namespace does not map: the caller decides */
        close(out); out = -1; close(in); in = -1;
        if (unlinkat(dstfd, name, 0) != 0) { sys = "unlink"; goto fail_dst; }
        continue;
      }
      sys = "fchown"; goto fail_dst;
    }
    /* After chown, which clears setuid/setgid. */
    if (fchmod(out, st.st_mode & 07777) != 0) { sys = "fchmod"; goto fail_dst; }
    if (copy_xattrs(in, out, &sys) != 0) goto fail_dst;
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (futimens(out, times) != 0) { sys = "futimens"; goto fail_dst; }
    if (close(out) != 0) { out = -1; sys = "close"; goto fail_dst; }
    out = -1;
    close(in);
    in = -1;
    job->status[i] = COPY_DONE;
    continue;
  fail_src:
    job->err = errno;
    snprintf(job->err_path, sizeof job->err_path, "%s/%s", job->src_dir, name);
    goto done;
  fail_dst:
    job->err = errno;
    snprintf(job->err_path, sizeof job->err_path, "%s/%s", job->dst_dir, name);
    goto done;
  fail_name:
    job->err = errno;
    snprintf(job->err_path, sizeof job->err_path, "%s", name);
    goto done;
  }
  goto done;
fail:
  job->err = errno;
  snprintf(job->err_path, sizeof job->err_path, "%s", where);
done:
  if (job->err) job->err_syscall = sys;
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  if (srcfd >= 0) close(srcfd);
  if (dstfd >= 0) close(dstfd);
}

static void copy_job_free(struct copy_job *job) {
  if (!job) return;
  for (uint32_t i = 0; i < job->count; i++) free(job->names[i]);
  free(job->names);
  free(job->src_dir);
  free(job->dst_dir);
  free(job->status);
  free(job);
}

static void copy_complete(napi_env env, napi_status status, void *data) {
  struct copy_job *job = data;
  napi_value result = NULL;
  if (status != napi_ok) {
    reject_with(env, job->deferred, "fsx: copyFiles was cancelled");
  } else if (job->err) {
    reject_errno(env, job->deferred, job->err, job->err_syscall ? job->err_syscall : "copyFiles", job->err_path, strerror(job->err));
  } else {
    napi_value ab;
    void *bytes;
    if (napi_create_arraybuffer(env, job->count, &bytes, &ab) == napi_ok &&
        napi_create_typedarray(env, napi_uint8_array, job->count, ab, 0, &result) == napi_ok) {
      if (job->count) memcpy(bytes, job->status, job->count);
      napi_resolve_deferred(env, job->deferred, result);
    } else {
      reject_with(env, job->deferred, "fsx: out of memory");
    }
  }
  napi_delete_async_work(env, job->work);
  copy_job_free(job);
}

static napi_value js_copy_files(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  uint32_t count;
  int64_t uid, gid;
  if (napi_get_array_length(env, argv[2], &count) != napi_ok || napi_get_value_int64(env, argv[3], &uid) != napi_ok ||
      napi_get_value_int64(env, argv[4], &gid) != napi_ok || uid > UINT32_MAX || gid > UINT32_MAX) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: copyFiles(srcDir, dstDir, names[], uid, gid)");
    return NULL;
  }
  struct copy_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
  job->uid = uid < 0 ? -1 : uid;
  job->gid = gid < 0 ? -1 : gid;
  job->names = calloc(count ? count : 1, sizeof(char *));
  job->status = malloc(count ? count : 1);
  if (!job->names || !job->status) { copy_job_free(job); napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
  if (!(job->src_dir = get_string(env, argv[0], "srcDir")) || !(job->dst_dir = get_string(env, argv[1], "dstDir")) ||
      !get_names(env, argv[2], count, job->names, &job->count)) {
    copy_job_free(job);
    return NULL;
  }
  napi_value promise = queue_job(env, "fsx.copyFiles", copy_execute, copy_complete, job, &job->deferred, &job->work);
  if (!promise) copy_job_free(job);
  return promise;
}

/*
 * copyFileData(src, dst): Promise<undefined>
 *
 * The data of regular file `src` into a new file `dst` (O_EXCL, mode 0600: the caller sets owner,
 * mode, xattrs and times), moved in the kernel as copyFiles moves it. Not fs.copyFile: libuv
 * truncates the destination it opens, and on ext4 a truncate to size 0 arms the flush-on-close
 * heuristic for files replaced by truncation (auto_da_alloc), so the close of a 1 GiB copy
 * waited 0.34 s for its writeback to start. Neither final component is followed.
 */
struct copy_one_job {
  char *src, *dst;
  int err;
  const char *sys;
  const char *where;
  napi_deferred deferred;
  napi_async_work work;
};

static void copy_one_execute(napi_env env, void *data) {
  (void)env;
  struct copy_one_job *job = data;
  struct copy_methods methods = {0, 0};
  int out = -1;
  int in = open(job->src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  struct stat st;
  job->where = job->src;
  if (in < 0) { job->sys = "open"; goto fail; }
  if (fstat(in, &st) != 0) { job->sys = "fstat"; goto fail; }
  if (!S_ISREG(st.st_mode)) { errno = EINVAL; job->sys = "copyFileData"; goto fail; }
  job->where = job->dst;
  out = open(job->dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) { job->sys = "open"; goto fail; }
  if (copy_data(in, out, st.st_size, &methods) != 0) { job->sys = "copy_file_range"; goto fail; }
  close(in);
  in = -1;
  if (close(out) != 0) { out = -1; job->sys = "close"; goto fail; }
  return;
fail:
  job->err = errno;
  if (in >= 0) close(in);
  if (out >= 0) close(out);
}

static void copy_one_complete(napi_env env, napi_status status, void *data) {
  struct copy_one_job *job = data;
  settle_void(env, status, job->deferred, job->err, job->sys, job->where, "fsx: copyFileData was cancelled");
  napi_delete_async_work(env, job->work);
  free(job->src);
  free(job->dst);
  free(job);
}

static napi_value js_copy_file_data(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  struct copy_one_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
  if (!(job->src = get_string(env, argv[0], "src")) || !(job->dst = get_string(env, argv[1], "dst"))) {
    free(job->src);
    free(job);
    return NULL;
  }
  napi_value promise = queue_job(env, "fsx.copyFileData", copy_one_execute, copy_one_complete, job, &job->deferred, &job->work);
  if (!promise) {
    free(job->src);
    free(job->dst);
    free(job);
  }
  return promise;
}

/*
 * inspectFiles(dir, names: string[], readMax, budget): Promise<Buffer>
 *
 * What the layer diff walk needs of each name of one directory, in one thread-pool job: the
 * lstat fields, whether it has any xattrs, a symlink's target, and the content of regular
 * files up to `readMax` bytes (until `budget` bytes are inlined; larger or later files are
 * streamed by the caller). Node would spend a pool round trip on each of lstat, open, fstat,
 * read and close per file. Names are single components opened with O_NOFOLLOW under the
 * directory's descriptor; a regular file only is opened (a fifo or device never is).
 *
 * Result: `count` records of INSPECT_RECORD bytes (little-endian), then the inlined bytes:
 *   0 u32 mode   4 u32 uid   8 u32 gid   12 u32 flags (1: has xattrs, 2: data inlined)
 *   16 u64 size  24 i64 mtime seconds (truncated toward zero)  32 u64 nlink  40 u64 dev  48 u64 ino  56 u64 rdev
 *   64 u64 data offset (from the buffer's start)  72 u64 data length
 * A file that shrank between lstat and read has fewer bytes than its size: the tar writer
 * reports that. The first error rejects the call, naming the path.
 */
#define INSPECT_RECORD 80
enum { INSPECT_XATTRS = 1, INSPECT_DATA = 2 };

struct inspect_job {
  char *dir;
  char **names;
  uint32_t count;
  uint64_t read_max, budget;
  struct stat *st;
  unsigned char *out;
  size_t out_len;
  int err;
  const char *err_syscall;
  char err_path[4200];
  napi_deferred deferred;
  napi_async_work work;
};

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

static void inspect_execute(napi_env env, void *data) {
  (void)env;
  struct inspect_job *job = data;
  const char *sys = "open";
  const char *name = NULL;
  int dirfd = -1, fd = -1;
  dirfd = open(job->dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd < 0) goto fail;
  /* First pass: lstat all, to size the one result buffer. */
  size_t total = (size_t)job->count * INSPECT_RECORD;
  uint64_t inlined = 0;
  for (uint32_t i = 0; i < job->count; i++) {
    name = job->names[i];
    if (!valid_name(name)) { errno = EINVAL; sys = "inspectFiles"; goto fail; }
    if (fstatat(dirfd, name, &job->st[i], AT_SYMLINK_NOFOLLOW) != 0) { sys = "lstat"; goto fail; }
    struct stat *s = &job->st[i];
    if (S_ISLNK(s->st_mode)) total += (size_t)s->st_size + 1;
    else if (S_ISREG(s->st_mode) && s->st_size > 0 && (uint64_t)s->st_size <= job->read_max && inlined + (uint64_t)s->st_size <= job->budget) {
      inlined += (uint64_t)s->st_size;
      total += (size_t)s->st_size;
    }
  }
  job->out = malloc(total ? total : 1);
  if (!job->out) { errno = ENOMEM; sys = "malloc"; goto fail; }
  size_t pos = (size_t)job->count * INSPECT_RECORD;
  inlined = 0;
  char path[4200];
  for (uint32_t i = 0; i < job->count; i++) {
    name = job->names[i];
    struct stat *s = &job->st[i];
    unsigned char *r = job->out + (size_t)i * INSPECT_RECORD;
    uint32_t flags = 0;
    size_t off = 0, len = 0;
    snprintf(path, sizeof path, "%s/%s", job->dir, name);
    ssize_t xl = llistxattr(path, NULL, 0);
    if (xl < 0 && errno != ENOTSUP) { sys = "llistxattr"; goto fail; }
    if (xl > 0) flags |= INSPECT_XATTRS;
    if (S_ISLNK(s->st_mode)) {
      ssize_t n = readlinkat(dirfd, name, (char *)job->out + pos, (size_t)s->st_size + 1);
      if (n < 0) { sys = "readlink"; goto fail; }
      if ((size_t)n > (size_t)s->st_size) { errno = EAGAIN; sys = "readlink"; goto fail; } /* changed under us */
      off = pos; len = (size_t)n; pos += (size_t)s->st_size + 1;
      flags |= INSPECT_DATA;
    } else if (S_ISREG(s->st_mode) && s->st_size > 0 && (uint64_t)s->st_size <= job->read_max && inlined + (uint64_t)s->st_size <= job->budget) {
      inlined += (uint64_t)s->st_size;
      fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      if (fd < 0) { sys = "open"; goto fail; }
      struct stat again;
      if (fstat(fd, &again) != 0) { sys = "fstat"; goto fail; }
      if (!S_ISREG(again.st_mode)) { errno = EAGAIN; sys = "open"; goto fail; } /* replaced meanwhile */
      size_t want = (size_t)s->st_size;
      while (len < want) {
        ssize_t n = read(fd, job->out + pos + len, want - len);
        if (n < 0) { if (errno == EINTR) continue; sys = "read"; goto fail; }
        if (n == 0) break;
        len += (size_t)n;
      }
      close(fd);
      fd = -1;
      off = pos; pos += want;
      flags |= INSPECT_DATA;
    }
    put_u32(r, (uint32_t)s->st_mode);
    put_u32(r + 4, (uint32_t)s->st_uid);
    put_u32(r + 8, (uint32_t)s->st_gid);
    put_u32(r + 12, flags);
    put_u64(r + 16, (uint64_t)s->st_size);
    int64_t sec = (int64_t)s->st_mtim.tv_sec;
    if (sec < 0 && s->st_mtim.tv_nsec > 0) sec += 1; /* toward zero, as the walk always truncated */
    memcpy(r + 24, &sec, 8);
    put_u64(r + 32, (uint64_t)s->st_nlink);
    put_u64(r + 40, (uint64_t)s->st_dev);
    put_u64(r + 48, (uint64_t)s->st_ino);
    put_u64(r + 56, (uint64_t)s->st_rdev);
    put_u64(r + 64, (uint64_t)off);
    put_u64(r + 72, (uint64_t)len);
  }
  job->out_len = pos;
  goto done;
fail:
  job->err = errno ? errno : EIO;
  job->err_syscall = sys;
  if (name) snprintf(job->err_path, sizeof job->err_path, "%s/%s", job->dir, name);
  else snprintf(job->err_path, sizeof job->err_path, "%s", job->dir);
done:
  if (fd >= 0) close(fd);
  if (dirfd >= 0) close(dirfd);
}

static void inspect_job_free(struct inspect_job *job) {
  if (!job) return;
  for (uint32_t i = 0; i < job->count; i++) free(job->names[i]);
  free(job->names);
  free(job->dir);
  free(job->st);
  free(job->out);
  free(job);
}

static void free_external(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  free(data);
}

static void inspect_complete(napi_env env, napi_status status, void *data) {
  struct inspect_job *job = data;
  napi_value result = NULL;
  if (status != napi_ok) {
    reject_with(env, job->deferred, "fsx: inspectFiles failed");
  } else if (job->err) {
    reject_errno(env, job->deferred, job->err, job->err_syscall, job->err_path, "fsx: inspectFiles failed");
  } else if (napi_create_external_buffer(env, job->out_len, job->out, free_external, NULL, &result) == napi_ok) {
    job->out = NULL; /* owned by the Buffer now */
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    void *copy;
    if (napi_create_buffer_copy(env, job->out_len, job->out, &copy, &result) == napi_ok) napi_resolve_deferred(env, job->deferred, result);
    else reject_with(env, job->deferred, "fsx: out of memory");
  }
  napi_delete_async_work(env, job->work);
  inspect_job_free(job);
}

static napi_value js_inspect_files(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  uint32_t count;
  int64_t read_max, budget;
  if (napi_get_array_length(env, argv[1], &count) != napi_ok || napi_get_value_int64(env, argv[2], &read_max) != napi_ok ||
      napi_get_value_int64(env, argv[3], &budget) != napi_ok || read_max < 0 || budget < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: inspectFiles(dir, names[], readMax, budget)");
    return NULL;
  }
  struct inspect_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
  job->read_max = (uint64_t)read_max;
  job->budget = (uint64_t)budget;
  job->names = calloc(count ? count : 1, sizeof(char *));
  job->st = calloc(count ? count : 1, sizeof(struct stat));
  if (!job->names || !job->st) { inspect_job_free(job); napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
  if (!(job->dir = get_string(env, argv[0], "dir")) || !get_names(env, argv[1], count, job->names, &job->count)) {
    inspect_job_free(job);
    return NULL;
  }
  napi_value promise = queue_job(env, "fsx.inspectFiles", inspect_execute, inspect_complete, job, &job->deferred, &job->work);
  if (!promise) inspect_job_free(job);
  return promise;
}

/*
 * unmount(target, detach: boolean): Promise<undefined>   umount2(target, UMOUNT_NOFOLLOW [| MNT_DETACH])
 * syncfs(path): Promise<undefined>                       syncfs() of the filesystem holding `path`
 *
 * In the thread pool: an overlay's unmount syncs its upper filesystem (unless mounted
 * `volatile`), and syncfs flushes a whole filesystem, either of which can take a while.
 * Spawning umount(8) for the first cost ~5 ms per RUN step; the syscall costs microseconds.
 */
enum path_op { PATH_UNMOUNT, PATH_UNMOUNT_DETACH, PATH_SYNCFS };

struct path_job {
  napi_async_work work;
  napi_deferred deferred;
  enum path_op op;
  char *path;
  int err;
};

static void path_execute(napi_env env, void *data) {
  (void)env;
  struct path_job *job = data;
  if (job->op == PATH_SYNCFS) {
    int fd = open(job->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) { job->err = errno; return; }
    if (syncfs(fd) != 0) job->err = errno;
    close(fd);
    return;
  }
  int flags = UMOUNT_NOFOLLOW | (job->op == PATH_UNMOUNT_DETACH ? MNT_DETACH : 0);
  if (umount2(job->path, flags) != 0) job->err = errno;
}

static void path_complete(napi_env env, napi_status status, void *data) {
  struct path_job *job = data;
  settle_void(env, status, job->deferred, job->err, job->op == PATH_SYNCFS ? "syncfs" : "umount2", job->path, "fsx: path job was cancelled");
  napi_delete_async_work(env, job->work);
  free(job->path);
  free(job);
}

static napi_value queue_path_job(napi_env env, enum path_op op, napi_value path) {
  struct path_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
  job->op = op;
  if (!(job->path = get_string(env, path, "path"))) { free(job); return NULL; }
  napi_value promise = queue_job(env, "fsx.pathJob", path_execute, path_complete, job, &job->deferred, &job->work);
  if (!promise) {
    free(job->path);
    free(job);
  }
  return promise;
}

static napi_value js_unmount(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  bool detach = false;
  if (napi_get_value_bool(env, argv[1], &detach) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: unmount(target, detach: boolean)");
    return NULL;
  }
  return queue_path_job(env, detach ? PATH_UNMOUNT_DETACH : PATH_UNMOUNT, argv[0]);
}

/*
 * newNetNamespace(tap?): a new network namespace, as an fd (O_CLOEXEC) that holds it.
 * unshare(CLONE_NEWNET) changes only the calling thread, so it runs in a thread of its own
 * that exits right after: no thread of this process (the main one, the thread pool's, whose
 * DNS lookups would go to the new namespace) is ever left in it. Spawning `unshare --net cat`
 * for this took a fork, two execs and a pipe round trip on every RUN network, ~3 ms of CPU.
 *
 * With `tap`, the namespace also gets a persistent, unattached tap device of that name, for
 * slirp4netns to attach to (TUNSETIFF on an existing device attaches). A tap slirp4netns made
 * itself is unregistered when its fd closes, inside the dying slirp4netns: 20-35 ms of RCU
 * barriers here, which whoever waits for slirp4netns waits for too. A persistent one outlives
 * that close and goes with its namespace, in the kernel's asynchronous namespace cleanup.
 */
struct netns_job {
  const char *tap;
  int fd;
  int err;
  const char *failed;
};

/* 0, or -1 with errno set and *failed naming the call. */
static int make_persistent_tap(const char *name, const char **failed) {
  *failed = "open";
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  *failed = "ioctl(TUNSETIFF)";
  int rc = ioctl(fd, TUNSETIFF, &ifr);
  if (rc == 0) {
    *failed = "ioctl(TUNSETPERSIST)";
    rc = ioctl(fd, TUNSETPERSIST, 1);
  }
  int e = errno;
  close(fd);
  errno = e;
  return rc;
}

static void *netns_thread(void *arg) {
  struct netns_job *job = arg;
  if (unshare(CLONE_NEWNET) != 0) {
    job->err = errno;
    job->failed = "unshare(CLONE_NEWNET)";
    return NULL;
  }
  // Before the fd is taken: a failure leaves nothing behind, the namespace dies with the thread.
  if (job->tap != NULL && make_persistent_tap(job->tap, &job->failed) != 0) {
    job->err = errno;
    return NULL;
  }
  job->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (job->fd < 0) {
    job->err = errno;
    job->failed = "open";
  }
  return NULL;
}

static napi_value js_new_net_namespace(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  char tap[IFNAMSIZ] = {0};
  struct netns_job job = {NULL, -1, 0, NULL};
  napi_valuetype type = napi_undefined;
  if (argc >= 1 && napi_typeof(env, argv[0], &type) != napi_ok) return NULL;
  if (type != napi_undefined) {
    size_t len = 0;
    if (type != napi_string || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok || len == 0 ||
        len >= IFNAMSIZ || napi_get_value_string_utf8(env, argv[0], tap, sizeof(tap), &len) != napi_ok) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: newNetNamespace(tap?: interface name)");
      return NULL;
    }
    job.tap = tap;
  }
  pthread_t thread;
  int rc = pthread_create(&thread, NULL, netns_thread, &job);
  if (rc != 0) return throw_errno(env, rc, "pthread_create", "(network namespace)");
  pthread_join(thread, NULL);
  if (job.err != 0) return throw_errno(env, job.err, job.failed, job.tap != NULL ? "/dev/net/tun" : "/proc/thread-self/ns/net");
  napi_value out;
  if (napi_create_int32(env, job.fd, &out) != napi_ok) {
    close(job.fd);
    napi_throw_error(env, NULL, "fsx: could not return the namespace fd");
    return NULL;
  }
  return out;
}

static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  return queue_path_job(env, PATH_SYNCFS, argv[0]);
}

/*
 * sha256New(): External; sha256Update(h, bytes): Promise<undefined>; sha256Digest(h): Buffer
 *
 * SHA-256 with Node's own OpenSSL (its exported symbols, the same code as crypto.createHash),
 * but each update in the thread pool: crypto's Hash runs on the main thread, where hashing a
 * 518 MB layer took ~250 ms that the blob's reads and writes, already in the thread pool,
 * could not overlap. The caller awaits each update before the next (and before the digest);
 * the job holds references to the hasher and the bytes while it runs.
 */
struct sha256_hasher { EVP_MD_CTX *ctx; };

struct sha256_job {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref hasher_ref;
  napi_ref bytes_ref;
  struct sha256_hasher *hasher;
  const unsigned char *data;
  size_t len;
  int failed;
};

static void sha256_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  struct sha256_hasher *h = data;
  EVP_MD_CTX_free(h->ctx);
  free(h);
}

static napi_value js_sha256_new(napi_env env, napi_callback_info info) {
  (void)info;
  struct sha256_hasher *h = calloc(1, sizeof *h);
  if (!h || !(h->ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
    if (h) { EVP_MD_CTX_free(h->ctx); free(h); }
    napi_throw_error(env, NULL, "fsx: cannot start a sha256 digest");
    return NULL;
  }
  napi_value ext;
  if (napi_create_external(env, h, sha256_finalize, NULL, &ext) != napi_ok) {
    EVP_MD_CTX_free(h->ctx);
    free(h);
    napi_throw_error(env, NULL, "fsx: cannot create a sha256 digest");
    return NULL;
  }
  return ext;
}

static struct sha256_hasher *get_hasher(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: not a sha256 hasher");
    return NULL;
  }
  return p;
}

static void sha256_execute(napi_env env, void *data) {
  (void)env;
  struct sha256_job *job = data;
  if (EVP_DigestUpdate(job->hasher->ctx, job->data, job->len) != 1) job->failed = 1;
}

static void sha256_complete(napi_env env, napi_status status, void *data) {
  struct sha256_job *job = data;
  napi_value result;
  if (status != napi_ok || job->failed) {
    reject_with(env, job->deferred, "fsx: sha256 update failed");
  } else {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->hasher_ref);
  napi_delete_reference(env, job->bytes_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value js_sha256_update(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  struct sha256_hasher *h = get_hasher(env, argv[0]);
  if (!h) return NULL;
  bool is_typed = false;
  napi_is_typedarray(env, argv[1], &is_typed);
  if (!is_typed) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: sha256Update(hasher, Uint8Array)"); return NULL; }
  napi_typedarray_type type;
  size_t length, offset;
  void *base;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &base, &ab, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fsx: sha256Update(hasher, Uint8Array)");
    return NULL;
  }
  struct sha256_job *job = calloc(1, sizeof *job);
  if (!job) { napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
  job->hasher = h;
  job->data = base;
  job->len = length;
  napi_value promise = NULL;
  if (napi_create_reference(env, argv[0], 1, &job->hasher_ref) != napi_ok || napi_create_reference(env, argv[1], 1, &job->bytes_ref) != napi_ok) {
    napi_throw_error(env, NULL, "fsx: could not queue a sha256 update");
  } else {
    promise = queue_job(env, "fsx.sha256Update", sha256_execute, sha256_complete, job, &job->deferred, &job->work);
  }
  if (!promise) {
    if (job->hasher_ref) napi_delete_reference(env, job->hasher_ref);
    if (job->bytes_ref) napi_delete_reference(env, job->bytes_ref);
    free(job);
  }
  return promise;
}

static napi_value js_sha256_digest(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct sha256_hasher *h = get_hasher(env, argv[0]);
  if (!h) return NULL;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1) { napi_throw_error(env, NULL, "fsx: sha256 digest failed"); return NULL; }
  napi_value out;
  void *bytes;
  if (napi_create_buffer_copy(env, len, md, &bytes, &out) != napi_ok) { napi_throw_error(env, "ENOMEM", "fsx: out of memory"); return NULL; }
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"openInRoot", NULL, js_open_in_root, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mountOverlay", NULL, js_mount_overlay, NULL, NULL, NULL, napi_enumerable, NULL},
    {"copyFiles", NULL, js_copy_files, NULL, NULL, NULL, napi_enumerable, NULL},
    {"copyFileData", NULL, js_copy_file_data, NULL, NULL, NULL, napi_enumerable, NULL},
    {"inspectFiles", NULL, js_inspect_files, NULL, NULL, NULL, napi_enumerable, NULL},
    {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"syncfs", NULL, js_syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
    {"newNetNamespace", NULL, js_new_net_namespace, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sha256New", NULL, js_sha256_new, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sha256Update", NULL, js_sha256_update, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sha256Digest", NULL, js_sha256_digest, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
