#!/usr/bin/env bash
# Installs what only the test suite needs, beyond scripts/deps.sh: Debian's chromium and
# Node.js for the browser tests and the OpenID Connect provider, g++ for libFuzzer, slapd
# for the LDAP tests, Slurm and munge for the single-node cluster of the Slurm tests, and
# playwright-core and oidc-provider (pinned in
# tests/{browser,oidc}/package.json and package-lock.json) from the npm registry.
# Idempotent. Must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# slapd and ldap-utils: the real LDAP directory of the LDAP login tests.
# slurmctld, slurmd, slurm-client, munge: the tests' own single-node Slurm cluster.
for p in chromium g++ slapd ldap-utils slurmctld slurmd slurm-client munge; do   # g++: libFuzzer, which test.sh builds for the fuzz run
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The tests run slapd with their own config; the package must not make a directory of
  # its own (nor start one).
  echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
  apt-get update -qq
  # Nor may Slurm's or munge's packages start daemons (on a machine with systemd): the
  # tests start their own, with a generated slurm.conf and munge key.
  rc_guard=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    rc_guard=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$rc_guard" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "test-deps: node $(node --version) is too old for playwright-core (18 or later)" >&2
  exit 1
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "test-deps: installing playwright-core into tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  echo "test-deps: installing oidc-provider into tests/oidc"
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
