#!/usr/bin/env bash
# Fails, listing file:line, when any log of a test run holds an unmasked NIK:
# a run of exactly 16 digits (not part of a longer number, so nanosecond
# timestamps and lease ids do not count) with a NIK's shape — known province,
# non-zero regency and district, a real day (01-31, or 41-71 for women) and
# month, non-zero serial. Matches are shown masked (3527**********01).
#
# Usage: tests/scan-logs.sh [DIR...]   (default: target/test-logs, where
# tests/run.sh has the harness keep every process log)
#
# etcd's own logs (etcd-m*.log) are not scanned: etcd holds the registry and
# may quote keys (which carry NIKs) in slow-request warnings; they are
# protected like the data itself.
set -euo pipefail
cd "$(dirname "$0")/.."

dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(target/test-logs)
for dir in "${dirs[@]}"; do
    if [ ! -d "$dir" ]; then
        echo "scan-logs: no log directory $dir (run the tests with EKTP_TEST_LOG_DIR=$dir)" >&2
        exit 2
    fi
done

mapfile -d '' files < <(find "${dirs[@]}" -type f -name '*.log' ! -name 'etcd-m*.log' -print0 | sort -z)
if [ ${#files[@]} -eq 0 ]; then
    echo "scan-logs: no logs under ${dirs[*]}" >&2
    exit 2
fi

# perl prints file:line: masked-nik for every finding and exits 1 if any.
perl -ne '
    BEGIN {
        %province = map { $_ => 1 } qw(11 12 13 14 15 16 17 18 19 21 31 32 33 34 35 36
            51 52 53 61 62 63 64 65 71 72 73 74 75 76 81 82 91 92 93 94 95 96);
        $found = 0;
    }
    while (/(?<![0-9])([0-9]{16})(?![0-9])/g) {
        my $n = $1;
        my ($p, $r, $d, $day, $m, $serial) = unpack("A2 A2 A2 A2 A2 x2 A4", $n);
        next unless $province{$p} && $r ne "00" && $d ne "00" && $serial ne "0000";
        next unless ($day >= 1 && $day <= 31) || ($day >= 41 && $day <= 71);
        next unless $m >= 1 && $m <= 12;
        printf "%s:%d: unmasked nik %s\n", $ARGV, $., substr($n, 0, 4) . ("*" x 10) . substr($n, 14);
        $found = 1;
    }
    close ARGV if eof;    # restart $. for the next file
    END { exit($found ? 1 : 0) }
' "${files[@]}" && status=0 || status=$?

if [ "$status" -ne 0 ]; then
    echo "scan-logs: unmasked NIKs in test logs (above); log nik.masked(), never the NIK" >&2
    exit 1
fi
echo "scan-logs: ${#files[@]} logs, no unmasked NIK" >&2
