#!/usr/bin/env bash
# Install the system packages sevflow's development services need, from Debian's packages:
# PostgreSQL (incident store), Prometheus Alertmanager with amtool (the webhook's real client),
# a Java runtime and Maven (the Kafka broker). Packages already present are left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v pg_createcluster >/dev/null 2>&1 || missing+=(postgresql-common)
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)  # promtool: checks deploy/prometheus rules
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)  # the console's browser tests

if [ ${#missing[@]} -eq 0 ]; then
  say "system packages present (java, maven, postgresql, prometheus-alertmanager, chromium)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  die "missing packages: ${missing[*]}; run as root or install them: sudo apt-get install ${missing[*]}"
fi
need apt-get "this script installs Debian packages; install ${missing[*]} by other means"
say "installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
# Debian's packages must not start their own services (we start ours on loopback).
policy_created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_created=1
fi
apt-get update -qq || die "apt-get update failed: are Debian's package mirrors reachable?"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || die "apt-get install ${missing[*]} failed"
[ "$policy_created" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
say "installed ${missing[*]}"
