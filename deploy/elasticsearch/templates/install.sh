#!/usr/bin/env bash
# Installs the canhgac Elasticsearch templates by hand (the collector also does this itself on
# start when outputs.elasticsearch.install_templates is true, the default).
#
#   ES_URL=https://es.example:9200 ES_API_KEY=... deploy/elasticsearch/templates/install.sh
#
# Component templates first: the index templates are composed of them. The files are written by
# `python -m shipper.outputs.elasticsearch.templates deploy/elasticsearch/templates` (default
# namespace and retention classes l3=90d, l2=30d, l1=14d); tests check they are current.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ES_URL="${ES_URL:-http://127.0.0.1:9200}"
AUTH=()
if [[ -n "${ES_API_KEY:-}" ]]; then AUTH=(-H "Authorization: ApiKey $ES_API_KEY");
elif [[ -n "${ES_USER:-}" ]]; then AUTH=(-u "$ES_USER:${ES_PASSWORD:?ES_PASSWORD is required with ES_USER}"); fi
CA=()
[[ -n "${ES_CA:-}" ]] && CA=(--cacert "$ES_CA")
put() {  # kind file
  local name; name="$(basename "$2" .json)"
  echo "PUT _$1/$name" >&2
  curl -fsS "${CA[@]+"${CA[@]}"}" "${AUTH[@]+"${AUTH[@]}"}" -X PUT "$ES_URL/_$1/$name" \
    -H 'Content-Type: application/json' --data-binary "@$2" >/dev/null
}
for f in "$HERE"/component_template/*.json; do put component_template "$f"; done
for f in "$HERE"/index_template/*.json; do put index_template "$f"; done
echo "installed canhgac templates on $ES_URL" >&2
