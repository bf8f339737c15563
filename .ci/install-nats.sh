#!/bin/sh
# Installs Debian's nats-server for the cluster specs (specs/cluster/, issue 13), which start one
# with JetStream on loopback. Idempotent: does nothing when a nats-server is already on the PATH
# or at /usr/sbin/nats-server (where Debian puts it).
set -eu
if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends nats-server
/usr/sbin/nats-server --version
