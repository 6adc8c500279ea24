#!/usr/bin/env bash
# Builds the compiled modules with AddressSanitizer and UndefinedBehaviorSanitizer and runs the
# test suite on them. The build lives in build/sanitize and is unpacked into build/sanitize/site,
# put first on PYTHONPATH: the normal build and install are never touched.
#
#   tools/sanitize.sh            every variant, the whole suite on the one import picks
#   tools/sanitize.sh --quick    the portable module, the tests that reach every kernel and
#                                Network method, and a slice of the fuzz harness (for CI)
#   tools/sanitize.sh -- ARGS    ARGS go to pytest (after either form)
#
# Prints pytest's counts; exits non-zero if a test fails or a sanitizer reports anything, in
# the test process or in any process it starts. PYTHON chooses the interpreter (default python3).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"

quick=0
if [[ "${1:-}" == "--quick" ]]; then quick=1; shift; fi
if [[ "${1:-}" == "--" ]]; then shift; fi

out="$root/build/sanitize"
site="$out/site"
logs="$out/logs"
mkdir -p "$out"

defines=(-Ccmake.define.DENSEPROP_SANITIZE=ON)
if ((quick)); then defines+=(-Ccmake.define.DENSEPROP_VARIANTS=); fi
echo "sanitize: building into $out"
rm -rf "$out/wheel" "$site" "$logs"
# With the build requirements at hand (a development venv) the build folder is reused as is;
# otherwise pip fetches them into a fresh environment (CI), and the build starts over.
isolation=()
if "$python" -c "import pybind11, scikit_build_core" 2>/dev/null; then
  isolation=(--no-build-isolation)
fi
"$python" -m pip wheel "$root" --no-deps --quiet "${isolation[@]}" -w "$out/wheel" \
  "-Cbuild-dir=$out/{wheel_tag}" "${defines[@]}"
"$python" -m zipfile -e "$out"/wheel/denseprop-*.whl "$site"
mkdir -p "$logs"
# An editable install of denseprop puts its import hook ahead of PYTHONPATH: drop it here.
cat > "$site/sitecustomize.py" <<'PY'
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__ or "denseprop" not in type(f).__module__]
PY

# The interpreter is not instrumented, so the ASan runtime must be loaded before anything else.
# libstdc++ too: ASan finds the real __cxa_throw only in libraries loaded when it starts.
asan="$(${CXX:-g++} -print-file-name=libasan.so)"
stdcxx="$(${CXX:-g++} -print-file-name=libstdc++.so)"
export LD_PRELOAD="$asan:$stdcxx${LD_PRELOAD:+:$LD_PRELOAD}"
# detect_leaks=0: CPython keeps interned objects and its allocator's arenas alive at exit, which
# LeakSanitizer reports by the thousand; leaks are measured by tests/test_leaks.py instead.
# Reports go to files so that one from any child process is seen too.
# allocator_may_return_null=1: a request for terabytes (the fuzz harness makes some) must come
# back to the caller as MemoryError, as it does without ASan, not abort.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export DENSEPROP_SANITIZED=1

# The tests must see the sanitized build, not an installed one.
"$python" - "$site" <<'PY'
import sys
import denseprop._native as native
if not native.core.__file__.startswith(sys.argv[1]):
    sys.exit(f"sanitize: imported {native.core.__file__}, not the sanitized build")
print("sanitize: testing", native.core.__file__)
PY

tests=("$root/tests")
if ((quick)); then
  # Every kernel (both dtypes, odd sizes, layouts, bad input), every Network method, aliasing,
  # threads, and the fuzz harness's CI slice.
  tests=("$root/tests/test_kernels_match_reference.py" "$root/tests/test_bf16.py"
         "$root/tests/test_bad_input.py"
         "$root/tests/test_network_api.py" "$root/tests/test_network_bad_input.py"
         "$root/tests/test_concurrency.py" "$root/tests/test_fuzz.py")
  export DENSEPROP_FUZZ_CASES="${DENSEPROP_FUZZ_CASES:-2000}"
fi

status=0
(cd "$root" && "$python" -m pytest -q -p no:cacheprovider "${tests[@]}" "$@") || status=$?

# allocator_may_return_null leaves a WARNING for each refused allocation; anything else counts.
reports=()
for log in "$logs"/*; do
  [[ -e "$log" ]] && grep -qv "WARNING: AddressSanitizer failed to allocate" "$log" && reports+=("$log")
done
if ((${#reports[@]})); then
  echo "sanitize: ${#reports[@]} sanitizer report(s):"
  cat "${reports[@]}"
  exit 1
fi
if ((status)); then echo "sanitize: pytest failed (exit $status)"; exit "$status"; fi
echo "sanitize: clean, no sanitizer reports"
