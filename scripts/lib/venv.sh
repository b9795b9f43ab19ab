# Shared by scripts/test and scripts/demo: the Python virtual environment with the
# official SDKs (tests/conformance/requirements.txt), created under .venv on first use
# and refreshed when the requirements change. Source it from the workspace root, then
# call `ensure_venv`; it sets VENV_PYTHON.

ensure_venv() {
  local venv=.venv
  local requirements=tests/conformance/requirements.txt
  local stamp="$venv/.requirements.sha256"
  local want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
  fi
  VENV_PYTHON="$PWD/$venv/bin/python"
  export VENV_PYTHON
}

# The cargo target directory (honours CARGO_TARGET_DIR and workspace config).
cargo_target_dir() {
  cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
}
