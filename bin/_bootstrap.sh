# Sourced by bin/run and bin/test: installs the pinned toolchain and the locked dependencies.
# Everything lands inside the checkout (.tools/, .venv/); nothing is installed system-wide.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV_VERSION="0.13.9"
PYTHON="${PYTHON:-python3}"
if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "bootstrap: installing uv $UV_VERSION into .tools/" >&2
  "$PYTHON" -m venv .tools
  .tools/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2
fi
export UV_PROJECT_ENVIRONMENT="$ROOT/.venv"
export UV_PYTHON_DOWNLOADS=never
# Installs exactly what uv.lock pins (fails if pyproject.toml and the lock disagree).
.tools/bin/uv sync --frozen --quiet
export PATH="$ROOT/.venv/bin:$PATH"
