#!/usr/bin/env bash
# Build the test node's root filesystem and its SIF images, or reuse them from the cache.
#
#   <cache>/<hash>/rootfs/                   Debian sid: slurm, munge, apptainer (the node itself)
#   <cache>/<hash>/images/jupyterlab.sif     Debian trixie minbase + jupyterlab python3-ipykernel
#   <cache>/<hash>/images/python3-only.sif   Debian trixie minbase + python3
#   <cache>/<hash>/images/jupyter-server-1.sif  Debian bookworm minbase + Jupyter Server 1.23, ipykernel
#   <cache>/<hash>/overlays/python3.13/      a site overlay: trixie's JupyterLab for the python3-only image
#
# <cache> is $OOD_JUPYTER_NODE_CACHE (default /var/cache/ood-jupyter-node); <hash> covers this
# script and packages/*.txt, so a changed recipe builds into a new directory. Every piece is
# built under work/ and renamed into place only when complete: an interrupted build is redone.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Apptainer 1.4 exists only in sid (and needs glibc >= 2.38), so the node is sid; the images are
# the current stable release (unless their package list names another), as a site's own images would be.
NODE_SUITE=sid

# The archive's URL as this host's apt knows it (deb822 .sources or one-line sources.list): the
# entry that carries the host's own release (sid and trixie come from the same archive). Never written into the repository.
debian_mirror() {
  local codename
  codename=$(. /etc/os-release && printf '%s' "$VERSION_CODENAME")
  {
    awk -v want="$codename" '
      function flush() { if (uris != "" && (" " suites " ") ~ (" " want " ")) { split(uris, u, " "); print u[1] } ; uris = ""; suites = "" }
      /^[ \t]*$/ { flush(); next }
      /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      END { flush() }' /etc/apt/sources.list.d/*.sources 2>/dev/null
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -E 's/\[[^]]*\]//' | awk -v want="$codename" '$1 == "deb" && $3 == want { print $2 }'
    # Failing that, any archive that is not the security one.
    awk '/^URIs:/ { print $2 }' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security
  } | head -n1 || true
}

# The archive's sid Release file is past its Valid-Until date on these machines. In a mount
# namespace of its own: mmdebstrap mounts /proc, /sys and /dev into the new root, and a build
# killed mid-way must not leave those mounted on the host (rm -rf would then reach into them).
mmdebstrap_in() {
  unshare -m --propagation private -- \
    mmdebstrap --aptopt='Acquire::Check-Valid-Until "false"' "$@"
}

build_rootfs() {
  local cache=$1 mirror=$2 work=$1/work t
  if [[ -d $cache/rootfs ]]; then
    log "reused rootfs ($cache/rootfs)"
    return
  fi
  t=$(now)
  log "building rootfs: $NODE_SUITE + $(node_package_list node)"
  mmdebstrap_in --variant=apt --include="$(node_package_list node)" \
    "$NODE_SUITE" "$work/rootfs" "$mirror"
  mkdir -p "$work/rootfs$NODE_IMAGES_DIR"
  mv "$work/rootfs" "$cache/rootfs"
  log "built rootfs in $(elapsed "$t") s ($(du -sh "$cache/rootfs" | cut -f1))"
}

# build_image NAME: a minbase root with packages/NAME.txt, turned into a SIF by the node's own
# apptainer (the host has none), running as root inside the node.
build_image() {
  local cache=$1 mirror=$2 name=$3 work=$1/work t t2 suite
  suite=$(node_image_suite "$name")
  if [[ -f $cache/images/$name.sif ]]; then
    log "reused image $name.sif"
  else
    t=$(now)
    log "building image $name: $suite minbase + $(node_package_list "$name")"
    mmdebstrap_in --variant=minbase --include="$(node_package_list "$name")" \
      "$suite" "$work/$name" "$mirror"
    log "image $name rootfs in $(elapsed "$t") s ($(du -sh "$work/$name" | cut -f1))"
    t2=$(now)
    # APPTAINER_TMPDIR on disk: the build copies the whole directory before squashing it.
    "${NODE_ENTER[@]}" "$cache/rootfs" "$work" /mnt/build -- /usr/bin/env APPTAINER_TMPDIR=/mnt/build \
      apptainer --quiet build --force "/mnt/build/$name.sif" "/mnt/build/$name"
    chmod 0644 "$work/$name.sif"
    # The image's shared libraries by name: build_overlay adds only those an image lacks.
    find "$work/$name/usr/lib/x86_64-linux-gnu" -maxdepth 1 -printf '%f\n' | sort >"$cache/images/$name.libs"
    mv "$work/$name.sif" "$cache/images/$name.sif"
    rm -rf --one-file-system "${work:?}/$name"
    log "built image $name.sif in $(elapsed "$t") s (SIF $(elapsed "$t2") s, $(du -h "$cache/images/$name.sif" | cut -f1))"
  fi
  # A hard link puts the image at the node's /opt/images without a second copy.
  ln -f "$cache/images/$name.sif" "$cache/rootfs$NODE_IMAGES_DIR/$name.sif"
}

# build_overlay NAME TARGET_IMAGE: a site overlay (packages/overlay-NAME.txt) laid out as the app
# expects one: site-packages/ on PYTHONPATH, share/jupyter/ on JUPYTER_PATH, etc/jupyter/ on
# JUPYTER_CONFIG_PATH, lib/ on LD_LIBRARY_PATH. lib/ holds only the libraries TARGET_IMAGE lacks
# (same release, so same ABI); a site builds the same with pip install --target from wheels.
build_overlay() {
  local cache=$1 mirror=$2 name=$3 target=$4 work=$1/work t root out so
  root=$work/overlay-root-$name
  out=$work/overlay-$name
  if [[ ! -d $cache/overlays/$name ]]; then
    t=$(now)
    log "building overlay $name: $(node_image_suite "overlay-$name") minbase + $(node_package_list "overlay-$name")"
    mmdebstrap_in --variant=minbase --include="$(node_package_list "overlay-$name")" \
      "$(node_image_suite "overlay-$name")" "$root" "$mirror"
    mkdir -p "$out/site-packages" "$out/share" "$out/etc" "$out/lib"
    cp -a "$root/usr/lib/python3/dist-packages/." "$out/site-packages/"
    cp -a "$root/usr/share/jupyter" "$out/share/jupyter"
    cp -a "$root/etc/jupyter" "$out/etc/jupyter"
    while IFS= read -r so; do
      grep -qxF "$so" "$cache/images/$target.libs" || cp -a "$root/usr/lib/x86_64-linux-gnu/$so" "$out/lib/"
    done < <(find "$root/usr/lib/x86_64-linux-gnu" -maxdepth 1 -name '*.so*' -printf '%f\n')
    chmod -R a+rX "$out"
    rm -rf --one-file-system "$root"
    mkdir -p "$cache/overlays"
    mv "$out" "$cache/overlays/$name"
    log "built overlay $name in $(elapsed "$t") s ($(du -sh "$cache/overlays/$name" | cut -f1), $(find "$cache/overlays/$name/lib" -type f | wc -l) libraries)"
  else
    log "reused overlay $name"
  fi
  rm -rf --one-file-system "$cache/rootfs$NODE_OVERLAYS_DIR/$name"
  mkdir -p "$cache/rootfs$NODE_OVERLAYS_DIR"
  cp -al "$cache/overlays/$name" "$cache/rootfs$NODE_OVERLAYS_DIR/$name"
}

# Caches of older recipes are 2-3 GB each: drop them, unless a running node still uses one.
prune_old_caches() {
  local cache=$1 dir
  for dir in "$NODE_CACHE_ROOT"/*/; do
    dir=${dir%/}
    [[ $dir != "$cache" && ${dir##*/} =~ ^[0-9a-f]{16}$ ]] || continue
    if [[ $(node_rootfs) == "$dir/rootfs" ]] && node_pid >/dev/null; then
      log "kept $dir: the running node uses it"
      continue
    fi
    log "removing the cache of an older recipe: $dir"
    rm -rf --one-file-system "$dir"
  done
}

main() {
  local cache mirror name t
  require_root
  t=$(now)
  need_host_cmds mmdebstrap:mmdebstrap unshare:util-linux nsenter:util-linux flock:util-linux
  mkdir -p "$NODE_CACHE_ROOT"
  # One build at a time per cache (two CI jobs on one machine wait for each other).
  exec 9>"$NODE_CACHE_ROOT/.lock"
  flock 9
  cache=$(node_cache_dir)
  log "cache: $cache"
  mkdir -p "$cache/images"
  # Leftovers of an interrupted build are never trusted.
  rm -rf --one-file-system "$cache/work"
  mkdir "$cache/work"

  mirror=
  local absent=
  [[ -d $cache/rootfs ]] || absent=rootfs
  [[ -d $cache/overlays/python3.13 ]] || absent=overlay
  for name in "${NODE_IMAGES[@]}"; do
    [[ -f $cache/images/$name.sif ]] || absent=$name
  done
  if [[ -n $absent ]]; then
    mirror=$(debian_mirror)
    [[ -n $mirror ]] || die "no Debian archive found in /etc/apt/sources.list{,.d/*}"
  fi
  build_rootfs "$cache" "$mirror"
  for name in "${NODE_IMAGES[@]}"; do
    build_image "$cache" "$mirror" "$name"
  done
  build_overlay "$cache" "$mirror" python3.13 python3-only
  rm -rf --one-file-system "$cache/work"
  prune_old_caches "$cache"
  log "ready in $(elapsed "$t") s: $cache"
}

# On one line: bash reads a script as it runs, and this one may be edited during a long build.
main "$@"; exit
