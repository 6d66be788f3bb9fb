#!/bin/sh
# Writes a minimal Linux root filesystem into DIR from Debian's busybox-static, so a first
# base image can be built offline: tsbuild build -t busybox examples/busybox
# (the Dockerfile there is `FROM scratch` + `COPY rootfs/ /`). Tests use it too.
set -eu
dir=${1:?usage: make-rootfs.sh DIR}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "make-rootfs.sh: $bb not found: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/root" "$dir/home/app" "$dir/var" "$dir/usr/bin" "$dir/sbin"
cp "$bb" "$dir/bin/busybox"
chmod 755 "$dir/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
chmod 1777 "$dir/tmp"
cat > "$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$dir/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
wheel:x:10:root,app
app:x:1000:
nobody:x:65534:
nogroup:x:65534:
GROUP
chown 1000:1000 "$dir/home/app"
