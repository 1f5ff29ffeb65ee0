#!/usr/bin/env bash
# Builds the aetos-api OCI image on this machine, the equivalent of the
# Containerfile without a container engine or registry: buildah, from
# scratch, around a statically linked (glibc, crt-static) release binary.
#
#   tools/image.sh [OUT]     # OUT: OCI layout directory, default target/image/oci
#
# The image is tagged aetos-api:latest in OUT (`skopeo copy
# oci:OUT:aetos-api:latest docker://REGISTRY/aetos-api:TAG` publishes it).
# buildah runs with the vfs storage driver in a private store under target/
# (overlay may not be available in a sandbox) and never runs a container:
# it only copies files and writes the image configuration, so it needs no
# user namespace. tools/image-test.sh runs the result.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-target/image/oci}
triple=$(uname -m)-unknown-linux-gnu
# The image's user: no name service in the image resolves it, but
# /etc/passwd and /etc/group name it for whatever reads them.
uid=42481

need=()
command -v buildah >/dev/null 2>&1 || need+=(buildah)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || need+=(ca-certificates)
if ((${#need[@]})); then
  echo "image: installing ${need[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "image: building the static aetos-api ($triple, release)" >&2
start=$SECONDS
RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --quiet --release --locked --target "$triple" --bin aetos-api
bin=target/$triple/release/aetos-api
echo "image: built in $((SECONDS - start)) s" >&2
# No interpreter, no NEEDED library: nothing to find in an empty image.
headers=$(readelf -l -d "$bin")
if grep -qE 'INTERP|\(NEEDED\)' <<<"$headers"; then
  echo "image: $bin is not statically linked:" >&2
  grep -E 'interpreter|NEEDED' <<<"$headers" >&2 || true
  exit 1
fi

work=target/image
rootfs=$work/rootfs
rm -rf "$rootfs"
install -D -m 0755 "$bin" "$rootfs/usr/bin/aetos-api"
install -d -m 0755 "$rootfs/etc/aetos" "$rootfs/etc/ssl/certs"
install -d -m 1777 "$rootfs/tmp"
# The system CAs, for TLS backends and Keystone without [..] ca_file.
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\naetos:x:%d:%d:aetos:/nonexistent:/sbin/nologin\n' "$uid" "$uid" \
  >"$rootfs/etc/passwd"
printf 'root:x:0:\naetos:x:%d:\n' "$uid" >"$rootfs/etc/group"
# The static glibc has the files and dns lookups built in and reads this
# file; without it glibc's default (dns [!UNAVAIL=return] files) reads
# /etc/hosts (Kubernetes hostAliases) only when DNS cannot be reached.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
"$bin" genconfig >"$rootfs/etc/aetos/aetos.conf.sample"
"$bin" genpolicy >"$rootfs/etc/aetos/policy.yaml.sample"

store=(--storage-driver vfs --root "$root/$work/storage" --runroot "$root/$work/run")
version=$("$bin" --version | awk '{print $2}')
ctr=$(buildah "${store[@]}" from --quiet scratch)
trap 'buildah "${store[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah "${store[@]}" copy --quiet "$ctr" "$rootfs/" / >/dev/null
buildah "${store[@]}" config \
  --user "$uid:$uid" \
  --port 8080 --port 9191 \
  --workingdir / \
  --entrypoint '["/usr/bin/aetos-api"]' \
  --cmd '["--config-file", "/etc/aetos/aetos.conf"]' \
  --label org.opencontainers.image.title=aetos-api \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.source=Containerfile \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  "$ctr"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
buildah "${store[@]}" commit --quiet --format oci --rm "$ctr" "oci:$out:aetos-api:latest" >/dev/null
trap - EXIT
echo "image: oci:$out:aetos-api:latest ($(du -sh "$out" | cut -f1))"
