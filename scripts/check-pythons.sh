#!/usr/bin/env bash
# Install facewright in a fresh venv for each Python 3.11 / 3.12 / 3.13 found (or named) and show that it
# imports, that the CLI runs and that a fast pytest subset passes; print one row per Python.
#
#   scripts/check-pythons.sh                      # python3.11, python3.12, python3.13 that run (PATH, pyenv, /usr)
#   scripts/check-pythons.sh /opt/py/bin/python3.13 python3.12   # these interpreters only
#   scripts/check-pythons.sh --ref HEAD           # check a commit (git archive) instead of the working tree
#
# Options: --src DIR (the source tree; default: this repository), --ref REF, --dir DIR (venvs, wheels,
# logs; default $TMPDIR/facewright-check-pythons), --rm (delete each venv after its check).
# CHECK_TESTS="tests/x.py ..." replaces the pytest subset. Pip settings (PIP_*) pass through.
# Every wheel is first downloaded into DIR/wheels and installed from there (--no-index), so a second run (or
# another Python sharing py3-none wheels) downloads nothing again: pip's own HTTP cache is not enough where a
# proxy drops the index's caching headers, as on this project's machines.
# Each venv is made afresh from a snapshot of the source taken at the start. The install is a regular (not
# editable) `pip install SNAPSHOT[test]`; the import and CLI checks run outside the source tree (the installed
# package), pytest runs in the snapshot. Exit status: 0 when every Python checked passed, 1 otherwise.
# Note: where no CPU torch build is on local disk (3.12 and 3.13 on this project's CI machines), pip takes
# PyPI's CUDA build of the pinned torch (0.5 GB per Python, plus 3 GB of nvidia-* wheels shared by all): the
# venv is 5.7 GB instead of 1.9 GB.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
src=$here ref="" remove=no
work=${TMPDIR:-/tmp}/facewright-check-pythons
pythons=()
while (($#)); do
    case $1 in
        --src) src=$(cd "$2" && pwd) || exit 2; shift 2 ;;
        --ref) ref=$2; shift 2 ;;
        --dir) work=$2; shift 2 ;;
        --rm) remove=yes; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "check-pythons: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) pythons+=("$1"); shift ;;
    esac
done
mkdir -p "$work/logs" || exit 2
work=$(cd "$work" && pwd)
wheels=$work/wheels
mkdir -p "$wheels" || exit 2
export PIP_DISABLE_PIP_VERSION_CHECK=1

# The fast subset: every stage's own modules (media, faces, provenance, train, swap, score via the CLI), the
# native wheels that differ per Python (torch, av, mediapipe, dlib, opencv, c2pa, cryptography, scipy), and
# pip (asset fetch). Paths that no longer exist are skipped and named. `pytest --collect-only` over all of
# tests/ runs first: it imports every test module, so every stage of the package.
default_tests=(tests/test_config.py tests/test_cli.py tests/test_assets.py tests/test_bad_input.py
    tests/media/test_image.py tests/media/test_video.py tests/faces/test_detect.py tests/faces/test_landmarks.py
    tests/faces/test_identity.py tests/faces/test_align.py tests/faces/test_mask.py
    tests/provenance/test_c2pa.py tests/provenance/test_ecc.py tests/provenance/test_label.py
    tests/train/test_losses.py tests/train/test_augment.py tests/swap/test_color.py tests/swap/test_blend.py
    tests/swap/test_smooth.py)
deselect=(--deselect tests/test_cli.py::test_demo_runs_end_to_end)  # trains a model: minutes, not a smoke test

# --- the snapshot of the source ------------------------------------------------------------------------------
snap=$work/src
rm -rf "$snap" && mkdir -p "$snap"
if [[ -n $ref ]]; then
    git -C "$src" archive "$ref" | tar -x -C "$snap" || { echo "check-pythons: git archive $ref failed" >&2; exit 2; }
    what="$ref ($(git -C "$src" rev-parse --short "$ref"))"
elif git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and untracked-not-ignored files as they are on disk now (so .venv, caches and builds stay out).
    (cd "$src" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -x -C "$snap" || { echo "check-pythons: copying $src failed" >&2; exit 2; }
    what="working tree of $src ($(git -C "$src" rev-parse --short HEAD)"
    git -C "$src" diff --quiet HEAD 2>/dev/null && what+=")" || what+=" + uncommitted changes)"
else
    (cd "$src" && tar --exclude='./.venv*' --exclude=__pycache__ --exclude='*.egg-info' -cf - .) | tar -x -C "$snap"
    what=$src
fi
tests=()
if [[ -n ${CHECK_TESTS:-} ]]; then read -r -a tests <<<"$CHECK_TESTS"; deselect=(); else
    for t in "${default_tests[@]}"; do
        if [[ -e $snap/$t ]]; then tests+=("$t"); else echo "note: $t is not in the source: skipped"; fi
    done
fi

# --- which interpreters --------------------------------------------------------------------------------------
runs() { "$1" -c 'import sys' >/dev/null 2>&1; }
find_minor() {  # the first python3.X that runs: PATH, then pyenv's installed versions (newest), /usr, /usr/local
    local minor=$1 p
    if runs "python$minor"; then command -v "python$minor"; return; fi
    if command -v pyenv >/dev/null 2>&1; then
        for p in $(ls -d "$(pyenv root)/versions/$minor".* 2>/dev/null | sort -V -r); do
            [[ $p =~ /$minor\.[0-9]+$ ]] && runs "$p/bin/python$minor" && { echo "$p/bin/python$minor"; return; }
        done
    fi
    for p in "/usr/local/bin/python$minor" "/usr/bin/python$minor"; do runs "$p" && { echo "$p"; return; }; done
}
if ((${#pythons[@]} == 0)); then
    for minor in 3.11 3.12 3.13; do
        p=$(find_minor "$minor")
        if [[ -n $p ]]; then pythons+=("$p"); else echo "note: no Python $minor that runs here: not checked"; fi
    done
fi

echo "checking $what"
echo "  in $work (wheels kept in $wheels); tests: ${#tests[@]} files"
declare -a rows=()
failed=0
row() {  # row PYTHON INSTALL IMPORT CLI TOTAL TESTS VENV-SIZE INTERPRETER
    rows+=("$(printf '%-8s %-8s %-7s %-7s %-9s %-26s %6s  %s' "$@")")
}

inrun() {  # in the venv's run folder (outside the source tree), a throw-away workspace and key folder
    (cd "$run" && export FACEWRIGHT_WORKSPACE=$run/ws FACEWRIGHT_KEYS=$run/keys && "$@")
}
step() {  # step NAME LOG COMMAND...: run, log, say ok / FAILED with the log's tail
    local name=$1 log=$2; shift 2
    local t0=$SECONDS
    if "$@" >>"$log" 2>&1; then
        printf '    %-44s ok (%ds)\n' "$name" $((SECONDS - t0)); return 0
    fi
    printf '    %-44s FAILED (%ds), log: %s\n' "$name" $((SECONDS - t0)) "$log"
    grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 15 | sed 's/^/      | /'
    return 1
}

for py in "${pythons[@]}"; do
    info=$("$py" -c 'import sys; v = sys.version_info; print(f"{v[0]}.{v[1]}.{v[2]} {v[0]}.{v[1]}", sys.executable)' \
        2>/dev/null)
    if [[ -z $info ]]; then
        echo; echo "== $py: does not run"
        row "?" - - - - - - "$py does not run"
        failed=1; continue
    fi
    read -r version minor exe <<<"$info"
    case $minor in 3.11|3.12|3.13) ;; *)
        echo; echo "== Python $version ($exe): outside 3.11-3.13, not checked"
        row "$version" - - - - - - "unsupported: $exe"
        continue ;;
    esac
    echo; echo "== Python $version ($exe)"
    venv=$work/venv-$minor log=$work/logs/$minor.log run=$work/run-$minor
    rm -rf "$venv" "$run" && mkdir -p "$run" && : >"$log"
    start=$SECONDS install=FAIL import=- cli=- tested=- size=-
    if step "venv" "$log" "$exe" -m venv "$venv" &&
        step "pip download '.[test]' (new wheels only)" "$log" \
            "$venv/bin/python" -m pip download --find-links "$wheels" -d "$wheels" "$snap[test]" &&
        step "pip install '.[test]' (non-editable)" "$log" \
            "$venv/bin/python" -m pip install --no-index --find-links "$wheels" "$snap[test]"; then
        install="ok $((SECONDS - start))s"
        if inrun step "import facewright, .api, .cli" "$log" "$venv/bin/python" -c 'import facewright
import facewright.api, facewright.cli
assert "site-packages" in facewright.__file__, facewright.__file__  # the installed copy, not the source
print(facewright.__version__, facewright.__file__)'; then
            import=ok
        else
            import=FAIL
        fi
        fw=$venv/bin/facewright ok=0 total=0
        for args in "--version" "--help" "models list" "assets list" "assets fetch single_face.mp4" probe; do
            total=$((total + 1))
            label="facewright $args"
            if [[ $args == probe ]]; then  # the cached sample clip, wherever FACEWRIGHT_HOME puts it
                args="probe $(inrun "$venv/bin/python" -c 'from facewright.assets import asset_path
print(asset_path("single_face.mp4", fetch_missing=False))' 2>>"$log")"
                label="facewright probe single_face.mp4"
            fi
            # shellcheck disable=SC2086  # the arguments are split on purpose
            inrun step "$label" "$log" "$fw" $args && ok=$((ok + 1))
        done
        cli="$ok/$total"; ((ok == total)) && cli="ok $ok/$total"
        (cd "$snap" && step "pytest --collect-only tests (every module)" "$log" \
            "$venv/bin/python" -m pytest -q -p no:cacheprovider --collect-only tests) || import=FAIL
        t0=$SECONDS code=0 tested="no tests"
        if ((${#tests[@]})); then
            (cd "$snap" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "${deselect[@]}" "${tests[@]}") \
                >"$work/logs/$minor-pytest.log" 2>&1
            code=$?
            summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)|no tests ran' "$work/logs/$minor-pytest.log" |
                tail -n 1 | sed 's/=//g; s/^ *//; s/, [0-9]* deselected//; s/ in [0-9.]*s.*//')
            tested="${summary:-pytest exit $code} ($((SECONDS - t0))s)"
        fi
        printf '    %-44s %s\n' "pytest (${#tests[@]} files)" "$tested"
        if ((code != 0)); then
            grep -E '^(FAILED|ERROR) ' "$work/logs/$minor-pytest.log" | head -n 20 | sed 's/^/      | /'
            echo "      log: $work/logs/$minor-pytest.log"
        fi
        [[ $import == ok && $cli == ok* && $code == 0 ]] || failed=1
    else
        failed=1
    fi
    size=$(du -sh "$venv" 2>/dev/null | cut -f1)
    [[ $remove == yes ]] && rm -rf "$venv" "$run"
    row "$version" "$install" "$import" "$cli" "$((SECONDS - start))s" "$tested" "${size:--}" "$exe"
done

echo
echo "facewright on each Python ($what, $(date +%F), $(uname -m), $(nproc) cores)"
printf '%-8s %-8s %-7s %-7s %-9s %-26s %6s  %s\n' python install import cli total tests venv interpreter
printf '%s\n' "${rows[@]}"
echo "wheels: $(du -sh "$wheels" | cut -f1) in $wheels; logs in $work/logs"
exit $failed
