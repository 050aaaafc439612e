# bitten image recipe: run inside the new root file system after debootstrap (part of the recipe's hash).
# Environment: RELEASE, MIRROR, PACKAGES (the recipe's extra packages), KERNEL_PACKAGES, MODULES (kernel modules
# to keep, with their dependencies; empty keeps all).
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
cat > /etc/apt/sources.list <<SOURCES
deb $MIRROR $RELEASE main contrib non-free non-free-firmware
deb $MIRROR $RELEASE-updates main contrib non-free non-free-firmware
deb http://security.debian.org/debian-security $RELEASE-security main contrib non-free non-free-firmware
SOURCES
# no services start while the image is built; dpkg need not fsync a tree that is packed afterwards
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/bitten-build
# nodes keep no manual pages, documentation or translations (the image lives in RAM)
cat > /etc/dpkg/dpkg.cfg.d/bitten-nodoc <<NODOC
path-exclude=/usr/share/man/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
NODOC
# the kernel's own initramfs boots a node from its disk (disk deploys): only the modules the recipe keeps
mkdir -p /etc/initramfs-tools/conf.d
if [ -n "$MODULES" ]; then
  echo MODULES=list > /etc/initramfs-tools/conf.d/bitten.conf
  for m in $MODULES; do echo "$m"; done > /etc/initramfs-tools/modules
else
  echo MODULES=most > /etc/initramfs-tools/conf.d/bitten.conf
fi
echo COMPRESS=zstd >> /etc/initramfs-tools/conf.d/bitten.conf
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $KERNEL_PACKAGES $PACKAGES > /dev/null
kernel=$(ls /usr/lib/modules)
[ "$(echo "$kernel" | wc -w)" -eq 1 ] || { echo "expected one kernel, found: $kernel" >&2; exit 1; }
[ -f "/boot/initrd.img-$kernel" ] || update-initramfs -c -k "$kernel"
# the node's identity (host name, host keys, machine id) comes with its overlay at boot, never with the image;
# no secret any package made while it was installed stays either
rm -f /etc/ssh/ssh_host_* /etc/munge/munge.key
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
echo localhost > /etc/hostname
passwd -l root > /dev/null
systemctl enable systemd-networkd.service systemd-resolved.service ssh.service bitten-report.service \
  bitten-deploy.service bitten-ssh-hostkeys.service > /dev/null 2>&1
# a getty on the serial console hides the boot's last lines, and nobody logs in there: the nodes report instead
systemctl mask getty@.service serial-getty@.service > /dev/null 2>&1
# keep only the kernel modules the recipe lists, with everything they depend on
if [ -n "$MODULES" ]; then
  keep=$(mktemp)
  for m in $MODULES; do
    if ! modprobe -S "$kernel" --show-depends "$m" > "$keep.one" 2>&1; then
      echo "kernel $kernel has no module $m" >&2; cat "$keep.one" >&2; exit 1
    fi
    awk '/^insmod/ {print $2}' "$keep.one" | sed 's|^/lib/|/usr/lib/|' >> "$keep"
  done
  sort -u -o "$keep" "$keep"
  find "/usr/lib/modules/$kernel/kernel" -name '*.ko*' | sort | comm -23 - "$keep" | xargs -r rm -f
  find "/usr/lib/modules/$kernel/kernel" -depth -type d -empty -delete
  depmod -a "$kernel"
  rm -f "$keep" "$keep.one"
fi
# what debootstrap installed before the rules above: the same rules, applied to the tree; the hardware database's
# sources stay out too (udev reads the compiled hwdb.bin, and without sources no boot recompiles it)
find /usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete
find /usr/share/doc -mindepth 1 -depth -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/lib/udev/hwdb.d
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# package lists are refreshed by the roles when they need them; the build's settings go
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/sbin/policy-rc.d /etc/dpkg/dpkg.cfg.d/bitten-build
mkdir -p /var/lib/apt/lists/partial
# /etc and /var are as new as /usr: no boot of this image reruns ldconfig, the hwdb or the journal catalog
# (ConditionNeedsUpdate), each a minute under emulation. systemd compares the stamp's TIMESTAMP_NSEC with /usr's
# mtime, which the cpio keeps to the second
usr=$(stat -c %Y /usr)
printf 'TIMESTAMP_NSEC=%s000000000\n' "$usr" > /etc/.updated
cp /etc/.updated /var/.updated
