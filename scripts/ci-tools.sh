#!/usr/bin/env bash
# Install the system tools the infrastructure tests use, from Debian's packages:
# podman (builds and runs the image), mmdebstrap (makes its base: no container
# registry is reachable here), kubectl (kustomize builds), and prometheus and
# prometheus-alertmanager (promtool, amtool and both servers: tests/monitoring), and
# chromium (the web UI's Playwright tests, tests/web: never `playwright install`), and
# haproxy (the load balancer of the drain drill, tests/drills). Then build the base
# image localhost/debian-python:bookworm-slim once and keep it (podman's own storage is
# the cache, plus the tarball under $MLOPS_CI_CACHE). Safe to run again; quick when
# everything is there.
set -euo pipefail

cache=${MLOPS_CI_CACHE:-/var/cache/mlops-ci}
base_image=localhost/debian-python:bookworm-slim
# tests/infrastructure/test_checkov.py runs this version from $cache.
CHECKOV_VERSION=3.3.30

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing $*: install it, or run this script as root on Debian/Ubuntu" >&2
    exit 1
  fi
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "$@" >/dev/null
}

need=()
for tool in podman:podman buildah:buildah mmdebstrap:mmdebstrap runc:runc \
  newuidmap:uidmap fuse-overlayfs:fuse-overlayfs slirp4netns:slirp4netns catatonit:catatonit \
  promtool:prometheus amtool:prometheus-alertmanager chromium:chromium haproxy:haproxy; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
[ -e /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ -e /usr/share/containers/containers.conf ] || need+=(golang-github-containers-common)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt_install "${need[@]}"
fi
if ! command -v kubectl >/dev/null; then
  # Not in Debian bookworm; the machine image ships it. Say so instead of failing later.
  echo "kubectl is missing: install it (https://kubernetes.io/docs/tasks/tools/)" >&2
  exit 1
fi

# podman here: no CAP_SYS_RESOURCE (no ulimit changes) and hybrid cgroups (crun refuses).
mkdir -p "$cache"
conf="$cache/containers.conf"
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' > "$conf"
export CONTAINERS_CONF=$conf

# The recipe's revision, as a label: a base made by an older recipe is made again.
base_recipe=2
if [ "$(podman image inspect --format '{{index .Labels "org.mlops.base-recipe"}}' "$base_image" 2>/dev/null)" != "$base_recipe" ]; then
  tarball="$cache/debian-python-bookworm-slim-r$base_recipe.tar"
  if [ ! -s "$tarball" ]; then
    echo "making the base image with mmdebstrap (a minute or two, once)"
    # Without documentation, manual pages and translations, as Debian's slim images.
    # /usr merged by mmdebstrap's hook rather than by the usrmerge package, which pulls
    # in Perl (about 47 MB) that nothing in the image uses, as in the official slim images.
    mmdebstrap --quiet --format=tar --variant=minbase --include=ca-certificates,python3,python3-venv \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      bookworm "$tarball.part" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main"
    mv "$tarball.part" "$tarball"
  fi
  podman import --change 'ENV LANG=C.UTF-8' --change "LABEL org.mlops.base-recipe=$base_recipe" \
    "$tarball" "$base_image" >/dev/null
fi
# checkov in a venv of its own: it pins boto3 and others below the project's versions.
checkov_venv="$cache/checkov-$CHECKOV_VERSION"
if [ ! -x "$checkov_venv/bin/checkov" ]; then
  echo "installing checkov $CHECKOV_VERSION"
  rm -rf "$checkov_venv"
  python3 -m venv "$checkov_venv"
  "$checkov_venv/bin/pip" install -q "checkov==$CHECKOV_VERSION"
fi
echo "infrastructure tools ready (podman $(podman version --format '{{.Client.Version}}'), base $base_image)"
