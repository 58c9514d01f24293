#!/usr/bin/env bash
# Builds the libFuzzer harnesses (test/fuzz/fuzz_*.c) with ASan+UBSan into
# build-fuzz/ and runs each for FUZZ_SECONDS, one after the other.
#
#   FUZZ_SECONDS=30     time per harness
#   FUZZ_ONLY="a b"     only these harnesses (names without fuzz_, e.g. "base64 model")
#   FUZZ_MAX_LEN=65536  largest input tried
#   FUZZ_BUILD_ONLY=1   build, do not run
#   CC=clang            the compiler (libFuzzer needs clang)
#
# Each harness starts from its committed corpus test/fuzz/corpus/<name>/ (read
# only); new interesting inputs go to build-fuzz/corpus-new/<name>/ and crash
# reproducers to build-fuzz/artifacts/<name>/, never into git. Prints one line
# per harness (executions, coverage, corpus, crashes) and exits non-zero if any
# harness crashed, leaked, tripped a sanitizer or timed out.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-65536}
FUZZ_ONLY=${FUZZ_ONLY:-}
FUZZ_BUILD_ONLY=${FUZZ_BUILD_ONLY:-0}
CC=${CC:-clang}
[ "$CC" = cc ] || [ "$CC" = gcc ] && CC=clang
out=build-fuzz

die() { echo "fuzz.sh: $*" >&2; exit 2; }

command -v "$CC" >/dev/null || die "$CC not found (apt-get install clang libclang-rt-14-dev)"

san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cflags="-g -O1 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -DFUZZ_MAIN
        -Ipkg -Icontroller -Itest/fuzz $(pkg-config --cflags json-c libcurl yaml-0.1)"
libs="$(pkg-config --libs json-c libcurl yaml-0.1) -lev -lm -lmicrohttpd"

# A probe: does this clang have libFuzzer's runtime?
mkdir -p "$out/obj"
probe="$out/obj/probe"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe.c"
"$CC" -fsanitize=fuzzer,address "$probe.c" -o "$probe" 2>"$probe.log" ||
        die "$CC cannot link libFuzzer programs (install libclang-rt-14-dev): $(head -3 "$probe.log")"

# The libraries, built once with coverage instrumentation (fuzzer-no-link);
# each harness links the archive, so only what it reaches comes in.
# A file that does not compile is left out with a warning: only a harness
# that needs it fails (at link time).
srcs=$(find pkg -name '*.c' | sort; find controller -name '*.c' ! -name main.c | sort)
objs=()
for s in $srcs; do
        o="$out/obj/${s%.c}.o"
        if [ ! -e "$o" ] || [ "$s" -nt "$o" ] ||
                [ -n "$(find pkg controller -name '*.h' -newer "$o" -print -quit)" ]; then
                mkdir -p "$(dirname "$o")"
                echo "  CC     $s"
                # shellcheck disable=SC2086
                if ! "$CC" $cflags $san -fsanitize=fuzzer-no-link -c "$s" -o "$o"; then
                        echo "fuzz.sh: warning: $s does not compile; left out" >&2
                        rm -f "$o"
                        continue
                fi
        fi
        objs+=("$o")
done
lib="$out/libpullpolicy-fuzz.a"
rm -f "$lib"
ar rcs "$lib" "${objs[@]}" || die "ar failed"

harnesses=()
for f in test/fuzz/fuzz_*.c; do
        n=$(basename "$f" .c)
        n=${n#fuzz_}
        if [ -n "$FUZZ_ONLY" ] && [[ " $FUZZ_ONLY " != *" $n "* ]]; then continue; fi
        harnesses+=("$n")
done
[ ${#harnesses[@]} -gt 0 ] || die "no harness matches FUZZ_ONLY=$FUZZ_ONLY"

for n in "${harnesses[@]}"; do
        echo "  BUILD  $out/fuzz_$n"
        # shellcheck disable=SC2086
        "$CC" $cflags $san -fsanitize=fuzzer "test/fuzz/fuzz_$n.c" "$lib" $libs -o "$out/fuzz_$n" ||
                die "building fuzz_$n failed"
done
[ "$FUZZ_BUILD_ONLY" = 1 ] && exit 0

failed=0
for n in "${harnesses[@]}"; do
        corpus="test/fuzz/corpus/$n"
        new="$out/corpus-new/$n"
        art="$out/artifacts/$n/"
        log="$out/logs/$n.log"
        mkdir -p "$new" "$art" "$out/logs" "$corpus"
        stamp="$out/logs/$n.start"
        touch "$stamp"
        dict=()
        [ -f "test/fuzz/dict/$n.dict" ] && dict=(-dict="test/fuzz/dict/$n.dict")
        # Its own session and no stdin: an input that names /dev/tty or /dev/stdin
        # (a kubeconfig can name files) must not block on the terminal.
        setsid "$out/fuzz_$n" -max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" \
                -timeout=20 -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$art" \
                "${dict[@]}" "$new" "$corpus" </dev/null >"$log" 2>&1
        rc=$?
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        crashes=$(find "$art" -type f -newer "$stamp" | wc -l)
        status=ok
        if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
                status="FAILED (exit $rc, see $log)"
                failed=$((failed + 1))
                [ "$crashes" -gt 0 ] || crashes=1
        fi
        printf '%-12s %10s execs  cov %-6s ft %-6s corpus %-5s crashes %s  %s\n' \
                "$n" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" "$status"
done
if [ "$failed" -gt 0 ]; then
        echo "fuzz: $failed harness(es) failed; reproducers in $out/artifacts/"
        exit 1
fi
echo "fuzz: ${#harnesses[@]} harnesses, no crash"
