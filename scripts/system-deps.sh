#!/usr/bin/env bash
# Install the Debian packages geo needs (PostgreSQL 15 + PostGIS 3 + pg_partman, Chromium for browser tests)
# when they are missing. As root it installs them; otherwise it prints the command to run.
set -euo pipefail

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
[ -f /usr/share/postgresql/15/extension/postgis.control ] || need+=(postgresql-15-postgis-3)
# monthly partitions of the events table (migration 0009)
[ -f /usr/share/postgresql/15/extension/pg_partman.control ] || need+=(postgresql-15-partman)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v pg_dump >/dev/null 2>&1 || need+=(postgresql-client-15)
# Chinese text in browser screenshots and notebook plots
fc-list 2>/dev/null | grep "Noto Sans CJK" >/dev/null || need+=(fonts-noto-cjk)  # not grep -q: under pipefail its early exit fails fc-list (SIGPIPE)
# pdfinfo / pdftotext / pdftoppm: the printed 网格图 (tests read it back, docs render it to PNG)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
# a C compiler for the lookup's compiled step (geo/api/_fastlookup.c; Python's headers come with CPython)
command -v cc >/dev/null 2>&1 || need+=(gcc)
# load generator for the benchmarks
command -v wrk >/dev/null 2>&1 || need+=(wrk)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
