# Shared by scripts/setup, scripts/test and scripts/run. Sourced, not executed.
# Settings (environment variables, all optional):
#   PYTHON        the Python that can import Odoo 18.0 (default: python3)
#   PGHOST/PGPORT/PGUSER  PostgreSQL server (default: 127.0.0.1 / 5432 / current user)
#   ODOO_ADDONS_PATH  extra Odoo addons directories, comma separated
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
export PGHOST=${PGHOST:-127.0.0.1}
export PGPORT=${PGPORT:-5432}
export PGUSER=${PGUSER:-$(id -un)}

odoo_missing_message() {
  cat >&2 <<MSG
Odoo 18.0 is not importable by '$PY' ($1).
emsp_clearing is an Odoo 18.0 Community add-on: Odoo itself is a prerequisite, not part of this
project. Provide it, then run scripts/setup again:
  1. get the Odoo 18.0 Community source (branch 18.0 of Odoo's public repository, or its
     tarball from Odoo's download page), e.g. into /opt/odoo18;
  2. install its Python dependencies (its requirements.txt; on Python 3.11 take the versions its
     markers select for Python 3.12, as 3.11's cbor2 pin does not build);
  3. make it importable AS A PLAIN DIRECTORY: 'pip install --no-deps -e <odoo source>
     --config-settings editable_mode=compat' (or a non-editable install, or set PYTHON to a Python
     that already imports it). pip's default editable mode (an import hook) breaks as soon as the
     OCA add-on wheels of requirements.txt land in site-packages/odoo/addons/: 'import odoo' then
     finds that folder as an empty namespace package.
Check: $PY -c 'import odoo.release as r; print(r.version)'   must print 18.0
MSG
}

# Exit status 0 when '$PY' imports Odoo 18.x; prints the reason otherwise.
check_odoo() {
  local out
  # An editable install in pip's default mode (import hook) is shadowed by the wheels' folder
  # site-packages/odoo/addons/: 'import odoo' gives an empty namespace without odoo.release.
  if out=$("$PY" -c 'import odoo, sys; sys.exit(0 if getattr(odoo, "__file__", None) else 3)' 2>&1); then
    :
  elif [ $? -eq 3 ]; then
    odoo_missing_message "'import odoo' finds only an empty namespace package ($("$PY" -c 'import odoo; print(list(odoo.__path__))' 2>&1)): Odoo was installed editable in pip's default mode, hidden by the OCA wheels installed under site-packages/odoo/addons/. Mend it with: $PY -m pip install --no-deps -e <odoo source> --config-settings editable_mode=compat"
    return 1
  fi
  if ! out=$("$PY" -c 'import odoo.release as r; print(r.version_info[0])' 2>&1); then
    odoo_missing_message "import odoo failed: $(printf '%s' "$out" | tail -n 1)"
    return 1
  fi
  if [ "$out" != "18" ]; then
    odoo_missing_message "it imports Odoo $out, not 18"
    return 1
  fi
}

# Comma-separated addons path: Odoo's own addons directories, then this repository.
odoo_addons_path() {
  "$PY" - "$REPO_ROOT" "${ODOO_ADDONS_PATH:-}" <<'PYEOF'
import os, sys
import odoo.addons
paths = []
def add(p):
    p = os.path.abspath(p)
    if os.path.isdir(p) and p not in paths:
        paths.append(p)
for p in odoo.addons.__path__:          # odoo/addons (+ wheels installed as odoo/addons/*)
    add(p)
root = os.path.dirname(os.path.dirname(os.path.abspath(odoo.__file__)))
if os.path.isdir(os.path.join(root, 'addons', 'web')):   # source checkout: <root>/addons
    add(os.path.join(root, 'addons'))
for p in filter(None, sys.argv[2].split(',')):
    add(p)
add(sys.argv[1])
print(','.join(paths))
PYEOF
}

pg_ready() {
  "$PY" - <<'PYEOF' >/dev/null 2>&1
import os, psycopg2
psycopg2.connect(host=os.environ['PGHOST'], port=os.environ['PGPORT'], user=os.environ['PGUSER'], dbname='postgres').close()
PYEOF
}

# Common Odoo command-line arguments for a database.
odoo_db_args() {
  echo "--db_host=$PGHOST --db_port=$PGPORT --db_user=$PGUSER --addons-path=$(odoo_addons_path)"
}
