#!/bin/sh
# TEST DOUBLE of NVIDIA's CUDA repository: a signed flat APT repository under $1 with empty stand-ins of the
# packages the gpu role installs, in several driver branches (570, 580 twice, 590) so that the branch pin can be
# seen choosing. The packages carry metadata and, where the role enables a service, a unit that only sleeps.
# Nothing here is NVIDIA software. Usage: build-mirror.sh DIR  (prints the signing key's fingerprint)
set -eu
dir=$1
mkdir -p "$dir" && cd "$dir"
work=$(mktemp -d)

pkg() {  # name version [unit-name]
  name=$1 version=$2 unit=${3:-}
  root="$work/$name-$version"
  mkdir -p "$root/DEBIAN"
  cat > "$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: all
Maintainer: bitten tests <tests@bitten.invalid>
Description: TEST DOUBLE of NVIDIA's $name (empty; for bitten's Molecule tests)
CONTROL
  if [ -n "$unit" ]; then
    mkdir -p "$root/usr/lib/systemd/system"
    printf '[Unit]\nDescription=TEST DOUBLE of %s\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n' \
      "$unit" > "$root/usr/lib/systemd/system/$unit.service"
  fi
  dpkg-deb --root-owner-group -Zgzip --build "$root" "$dir/${name}_${version}_all.deb" >/dev/null
}

for v in 570.172.08-1 580.65.06-1 580.82.07-1 590.44.01-1; do
  pkg nvidia-driver-cuda "$v"
  pkg nvidia-kernel-open-dkms "$v"
  pkg nvidia-persistenced "$v" nvidia-persistenced
  pkg nvidia-fabricmanager "$v" nvidia-fabricmanager
  pkg libnvidia-nscq "$v"
done
pkg datacenter-gpu-manager-4-core 1:4.4.1-1 nvidia-dcgm
pkg datacenter-gpu-manager-4-cuda13 1:4.4.1-1
pkg datacenter-gpu-manager-exporter 4.4.1-4.5.0-1
pkg nvidia-container-toolkit 1.17.8-1

apt-ftparchive packages . > Packages
apt-ftparchive -o APT::FTPArchive::Release::Origin="bitten test double of NVIDIA" release . > Release
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-gen-key "bitten test mirror <tests@bitten.invalid>" ed25519 sign never
gpg --batch --quiet --yes --clearsign -o InRelease Release
gpg --batch --quiet --armor --export > testkey.asc
gpg --batch --with-colons --list-keys | awk -F: '/^fpr/ {print $10; exit}' > fingerprint
rm -rf "$work"
cat fingerprint
