#!/bin/sh
# TEST DOUBLE of NVIDIA's CUDA repository: a signed flat APT repository under $1 with empty stand-ins of the
# packages the gpu role installs, in several driver branches (570, 580 twice, 590) so that the branch pin can be
# seen choosing. The packages carry metadata and, where the role enables a service, a unit that only sleeps.
# Fabric Manager's stand-in mimics how NVIDIA's 580 package runs on fourth-generation NVSwitch (HGX B200): its unit
# runs nvidia-fabricmanager-start.sh, which exits 1 without ibstat and, when NVLSM is installed, starts nvlsm
# before nv-fabricmanager (both stand-ins only wait). NVLSM has its own version (not the driver's).
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

waiter() {  # path: a stand-in daemon that keeps its own name as the process name (no exec)
  mkdir -p "$(dirname "$1")"
  printf '#!/bin/sh\n# TEST DOUBLE (bitten): waits\nwhile :; do sleep 3600; done\n' > "$1"
  chmod 0755 "$1"
}

fabricmanager() {  # version
  version=$1
  root="$work/nvidia-fabricmanager-$version"
  mkdir -p "$root/DEBIAN" "$root/usr/lib/systemd/system" "$root/usr/bin"
  cat > "$root/DEBIAN/control" <<CONTROL
Package: nvidia-fabricmanager
Version: $version
Architecture: all
Maintainer: bitten tests <tests@bitten.invalid>
Description: TEST DOUBLE of NVIDIA's nvidia-fabricmanager (wrapper starts nvlsm first on NVLSM systems)
CONTROL
  waiter "$root/usr/bin/nv-fabricmanager"
  cat > "$root/usr/bin/nvidia-fabricmanager-start.sh" <<'WRAPPER'
#!/bin/sh
# TEST DOUBLE (bitten) of Fabric Manager's start wrapper: ibstat is required, NVLSM (when installed) starts first
set -eu
command -v ibstat >/dev/null || { echo "ibstat not found: install infiniband-diags" >&2; exit 1; }
if [ -x /usr/bin/nvlsm ]; then
  echo "Detected NVL5+ system: starting NVLSM"
  /usr/bin/nvlsm &
  echo $! > /run/nvlsm.pid
else
  echo "Detected Pre-NVL5 system"
fi
exec /usr/bin/nv-fabricmanager
WRAPPER
  chmod 0755 "$root/usr/bin/nvidia-fabricmanager-start.sh"
  printf '[Unit]\nDescription=TEST DOUBLE of NVIDIA fabric manager service\n\n[Service]\nExecStart=/usr/bin/nvidia-fabricmanager-start.sh --mode start\n\n[Install]\nWantedBy=multi-user.target\n' \
    > "$root/usr/lib/systemd/system/nvidia-fabricmanager.service"
  dpkg-deb --root-owner-group -Zgzip --build "$root" "$dir/nvidia-fabricmanager_${version}_all.deb" >/dev/null
}

for v in 570.172.08-1 580.65.06-1 580.82.07-1 590.44.01-1; do
  pkg nvidia-driver-cuda "$v"
  pkg nvidia-kernel-open-dkms "$v"
  pkg nvidia-persistenced "$v" nvidia-persistenced
  fabricmanager "$v"
  pkg libnvidia-nscq "$v"
  pkg libnvsdm "$v"
done
# NVLSM is versioned on its own
root="$work/nvlsm"
mkdir -p "$root/DEBIAN" "$root/usr/share/nvidia/nvlsm"
printf 'Package: nvlsm\nVersion: 2025.06.5-1\nArchitecture: all\nMaintainer: bitten tests <tests@bitten.invalid>\nDescription: TEST DOUBLE of NVIDIA NVLink Subnet Manager\n' \
  > "$root/DEBIAN/control"
waiter "$root/usr/bin/nvlsm"
echo "# TEST DOUBLE (bitten)" > "$root/usr/share/nvidia/nvlsm/nvlsm.conf"
dpkg-deb --root-owner-group -Zgzip --build "$root" "$dir/nvlsm_2025.06.5-1_all.deb" >/dev/null
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
