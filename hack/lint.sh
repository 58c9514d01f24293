#!/usr/bin/env bash
# make lint: formatting (clang-format) and static analysis (cppcheck).
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files '*.c' '*.h')
status=0

echo "lint: clang-format on ${#files[@]} files"
if ! clang-format --dry-run -Werror "${files[@]}"; then
        echo "lint: formatting differs; run 'make format'" >&2
        status=1
fi

# cppcheck cannot see __attribute__((cleanup)), so its leak check reports every
# _cleanup_ variable; leaks are checked for real by valgrind and ASan in the tests.
# __CPPCHECK__: headers give it plain casts where it cannot parse C11's _Generic.
echo "lint: cppcheck"
if ! cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
        --inline-suppr --suppress=missingIncludeSystem --suppress=memleak -D__GNUC__ -D_GNU_SOURCE -D__CPPCHECK__ \
        -Ipkg -Icontroller -Itest/support pkg controller test/sim 2>&1; then
        status=1
fi

echo "lint: manifests/argocd/argocd-cm.yaml matches health.lua"
tmp=$(mktemp)
bash hack/gen-argocd-cm.sh "$tmp"
if ! diff -q "$tmp" manifests/argocd/argocd-cm.yaml >/dev/null; then
        echo "lint: argocd-cm.yaml is stale; run hack/gen-argocd-cm.sh" >&2
        status=1
fi
rm -f "$tmp"

echo "lint: bundle/ matches what hack/gen-bundle.sh generates from manifests/"
bash hack/gen-bundle.sh --check || status=1

echo "lint: no private keys or kubeconfigs with credentials in git"
bash hack/check-secrets.sh || status=1

echo "lint: shell scripts"
for f in $(git ls-files 'hack/*.sh' 'test/*.sh' '.ci/run'); do
        bash -n "$f" || status=1
done

[ "$status" -eq 0 ] && echo "lint: clean"
exit "$status"
