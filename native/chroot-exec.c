/*
 * chroot-exec: runs one command of a RUN step chrooted into a working root filesystem, for
 * isolation chroot (src/runtime/chroot-runner.ts), where neither mount(2) nor user namespaces
 * are allowed (root in a default Docker or Kubernetes container) and so runc can't run.
 *
 *   chroot-exec --root DIR --cwd DIR --uid N --gid N [--groups G,G] [--caps HEX]
 *               [--rlimit NAME:SOFT:HARD]... [--hostname NAME] [--env K=V]... -- ARGS...
 *
 * What it does, in order: tries to unshare the pid, ipc and uts namespaces (each alone; EPERM
 * is expected where CAP_SYS_ADMIN is gone), becomes a child subreaper, forks. The child:
 * own process group, chroot, chdir to the working dir, rlimits, hostname (only in its own uts
 * namespace), drops every capability outside --caps from the bounding set, setgroups/setgid/
 * setuid (a non-root uid loses all capabilities with it), root keeps only --caps, no ambient
 * capabilities, descriptors above 2 closed, then execve of ARGS[0] looked up in the PATH of the
 * given environment inside the new root, as runc does, with exactly that environment.
 * The parent waits; when the command ends (or on SIGTERM/SIGINT/SIGHUP) it kills whatever the
 * command left running (its process group, and every process reparented to it as subreaper),
 * reaps them all, and exits with the command's status: its exit code, or 128+n for signal n.
 *
 * Fd 3, when open, gets one line at the end: "exit N", or "error MESSAGE" when the command
 * could not be started (setup failed); the exit code is then 125. A command that is not found
 * or not executable exits 127 / 126 with a message on its stderr, as a shell would.
 * The environment is given as arguments, not inherited, so nothing of the command's
 * environment (LD_PRELOAD…) acts on this helper before the chroot.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define STATUS_FD 3
#define MAX_LIST 4096

static const char *default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static int status_ok = 0;

static void status_line(const char *fmt, ...) {
  if (!status_ok) return;
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t w = write(STATUS_FD, buf, (size_t)n);
  (void)w;
}

/* Setup failed: report it on the status fd and stderr, exit 125 (as runc does for its own errors). */
static void die(const char *what) {
  int e = errno;
  status_line("error %s: %s", what, strerror(e));
  fprintf(stderr, "chroot-exec: %s: %s\n", what, strerror(e));
  _exit(125);
}

static void usage(const char *msg) {
  status_line("error usage: %s", msg);
  fprintf(stderr, "chroot-exec: usage: %s\n", msg);
  _exit(125);
}

struct rlim {
  int resource;
  rlim_t soft, hard;
};

static int rlimit_resource(const char *name) {
  static const struct { const char *name; int res; } table[] = {
    {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(table[i].name, name) == 0) return table[i].res;
  return -1;
}

static rlim_t parse_rlim(const char *s) {
  if (strcmp(s, "-1") == 0 || strcmp(s, "unlimited") == 0) return RLIM_INFINITY;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) usage("bad rlimit value");
  return (rlim_t)v;
}

static long parse_id(const char *s) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0 || v > 0xfffffffeL) usage("bad id");
  return v;
}

/* Lowers a limit we may not raise (no CAP_SYS_RESOURCE) to our own hard limit, as runc.ts does. */
static void apply_rlimit(const struct rlim *r) {
  struct rlimit l = {r->soft, r->hard};
  if (setrlimit(r->resource, &l) == 0) return;
  if (errno != EPERM) die("setrlimit");
  struct rlimit cur;
  if (getrlimit(r->resource, &cur) != 0) die("getrlimit");
  if (l.rlim_max > cur.rlim_max) l.rlim_max = cur.rlim_max;
  if (l.rlim_cur > l.rlim_max) l.rlim_cur = l.rlim_max;
  if (setrlimit(r->resource, &l) != 0) die("setrlimit");
}

static void drop_capabilities(uint64_t keep, int root) {
  for (int cap = 0; cap < 64; cap++) {
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die("dropping a capability from the bounding set");
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) die("clearing ambient capabilities");
  if (!root) return; /* setuid to a non-zero uid clears permitted and effective */
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) != 0) die("capget");
  for (int i = 0; i < 2; i++) {
    uint32_t k = (uint32_t)(keep >> (32 * i));
    data[i].permitted &= k;
    data[i].effective &= k;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &hdr, data) != 0) die("capset");
}

static void close_extra_fds(void) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
#endif
  DIR *d = opendir("/proc/self/fd");
  if (!d) {
    for (int fd = 3; fd < 65536; fd++) close(fd);
    return;
  }
  int dfd = dirfd(d);
  struct dirent *e;
  int fds[1024];
  int n = 0;
  while ((e = readdir(d)) && n < 1024) {
    int fd = atoi(e->d_name);
    if (fd > 2 && fd != dfd) fds[n++] = fd;
  }
  closedir(d);
  for (int i = 0; i < n; i++) close(fds[i]);
}

/* execve with the PATH of `envp` (inside the new root), errors as a shell reports them. */
static void exec_in_path(char **argv, char **envp) {
  const char *file = argv[0];
  if (strchr(file, '/')) {
    execve(file, argv, envp);
    int e = errno;
    fprintf(stderr, "chroot-exec: exec %s: %s\n", file, strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  const char *path = NULL;
  for (char **p = envp; *p; p++)
    if (strncmp(*p, "PATH=", 5) == 0) path = *p + 5;
  if (!path) path = default_path;
  int eacces = 0;
  size_t flen = strlen(file);
  const char *dir = path;
  for (;;) {
    const char *end = strchr(dir, ':');
    size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
    char buf[4096];
    if (dlen + flen + 2 <= sizeof buf) {
      if (dlen == 0) {
        memcpy(buf, file, flen + 1);
      } else {
        memcpy(buf, dir, dlen);
        buf[dlen] = '/';
        memcpy(buf + dlen + 1, file, flen + 1);
      }
      execve(buf, argv, envp);
      if (errno == EACCES) eacces = 1;
    }
    if (!end) break;
    dir = end + 1;
  }
  if (eacces) {
    fprintf(stderr, "chroot-exec: exec %s: permission denied\n", file);
    _exit(126);
  }
  fprintf(stderr, "chroot-exec: exec \"%s\": executable file not found in $PATH\n", file);
  _exit(127);
}

static volatile sig_atomic_t terminate = 0;
static void on_term(int sig) {
  (void)sig;
  terminate = 1;
}

/* The signals that stop a build: the helper relays them to the command; the command takes the defaults. */
static void on_stop_signals(void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

/* SIGKILLs every child of this (single-threaded) process, as listed by the kernel. */
static int kill_children(void) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int pid, n = 0;
  while (fscanf(f, "%d", &pid) == 1) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    n++;
  }
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  status_ok = fcntl(STATUS_FD, F_GETFD) != -1;
  if (status_ok) fcntl(STATUS_FD, F_SETFD, FD_CLOEXEC);

  const char *root = NULL, *cwd = "/", *hostname = NULL;
  long uid = -1, gid = -1;
  gid_t groups[MAX_LIST];
  int ngroups = 0;
  struct rlim rlims[32];
  int nrlims = 0;
  uint64_t caps = 0;
  char **envp = calloc((size_t)argc + 1, sizeof(char *));
  int nenv = 0;
  if (!envp) die("calloc");
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) usage("option without value");
    const char *v = argv[++i];
    if (strcmp(a, "--root") == 0) root = v;
    else if (strcmp(a, "--cwd") == 0) cwd = v;
    else if (strcmp(a, "--uid") == 0) uid = parse_id(v);
    else if (strcmp(a, "--gid") == 0) gid = parse_id(v);
    else if (strcmp(a, "--hostname") == 0) hostname = v;
    else if (strcmp(a, "--env") == 0) envp[nenv++] = (char *)v;
    else if (strcmp(a, "--caps") == 0) caps = strtoull(v, NULL, 16);
    else if (strcmp(a, "--groups") == 0) {
      char *copy = strdup(v), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (ngroups >= MAX_LIST) usage("too many groups");
        groups[ngroups++] = (gid_t)parse_id(t);
      }
      free(copy);
    } else if (strcmp(a, "--rlimit") == 0) {
      char *copy = strdup(v);
      char *s1 = strchr(copy, ':');
      char *s2 = s1 ? strchr(s1 + 1, ':') : NULL;
      if (!s2 || nrlims >= 32) usage("--rlimit NAME:SOFT:HARD");
      *s1 = *s2 = 0;
      int res = rlimit_resource(copy);
      if (res < 0) usage("unknown rlimit");
      rlims[nrlims++] = (struct rlim){res, parse_rlim(s1 + 1), parse_rlim(s2 + 1)};
      free(copy);
    } else usage("unknown option");
  }
  if (!root || uid < 0 || gid < 0 || i >= argc) usage("--root, --uid, --gid and a command are required");
  char **cmd = argv + i;

  /* Namespaces the host still permits; each alone, so one refused doesn't cost the others. */
  int own_uts = unshare(CLONE_NEWUTS) == 0;
  if (unshare(CLONE_NEWIPC) != 0 && errno != EPERM && errno != EINVAL) die("unshare ipc");
  if (unshare(CLONE_NEWPID) != 0 && errno != EPERM && errno != EINVAL) die("unshare pid");
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) die("becoming a subreaper");
  /* Dies with tsbuild; its children are killed below or by their own parent-death signal. */
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

  on_stop_signals(on_term);

  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    on_stop_signals(SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setpgid(0, 0) != 0) die("setpgid");
    if (chroot(root) != 0) die("chroot");
    if (chdir("/") != 0) die("chdir /");
    if (chdir(cwd) != 0) die("chdir to the working directory");
    for (int r = 0; r < nrlims; r++) apply_rlimit(&rlims[r]);
    if (own_uts && hostname && sethostname(hostname, strlen(hostname)) != 0) die("sethostname");
    drop_capabilities(caps, uid == 0);
    if (setgroups((size_t)ngroups, groups) != 0) die("setgroups");
    if (setgid((gid_t)gid) != 0) die("setgid");
    if (setuid((uid_t)uid) != 0) die("setuid");
    /* setuid cleared it; the command dies with this helper even if the helper is SIGKILLed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    close_extra_fds();
    exec_in_path(cmd, envp);
  }

  int code = -1;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p == child) {
      code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (p < 0 && errno == ECHILD) break;
    if (p < 0 && errno == EINTR && terminate) {
      kill(-child, SIGKILL);
      kill(child, SIGKILL);
    }
  }
  /* The command is done: nothing it started may outlive it (runc kills its pid namespace). */
  for (;;) {
    kill(-child, SIGKILL);
    kill_children();
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0 && errno == ECHILD) break;
  }
  if (code < 0) code = 125;
  status_line("exit %d", code);
  return code;
}
