#!/usr/bin/env bash
# Register the sidecar as Elasticsearch's model server: inference endpoints, ingest pipeline, index.
#   ES_URL=https://es:9200 ES_AUTH="ApiKey ..." SIDECAR_URL=http://sparse-sidecar:8080 \
#   SIDECAR_API_KEY=... INDEX=docs ./setup.sh [hugging-face|custom]
set -euo pipefail
cd "$(dirname "$0")"
: "${ES_URL:?set ES_URL}" "${SIDECAR_URL:?set SIDECAR_URL (as Elasticsearch reaches it)}"
SIDECAR_API_KEY="${SIDECAR_API_KEY:-unused}"  # Elasticsearch requires a value even without auth
INDEX="${INDEX:-docs}"
FLAVOUR="${1:-hugging-face}"

render() { sed -e "s#{{SIDECAR_URL}}#${SIDECAR_URL}#g" -e "s#{{SIDECAR_API_KEY}}#${SIDECAR_API_KEY}#g" "$1"; }
put() {
  local path="$1" file="$2"
  echo "PUT ${path}"
  render "$file" | curl -fsS -X PUT "${ES_URL}${path}" ${ES_AUTH:+-H "Authorization: ${ES_AUTH}"} \
    -H 'Content-Type: application/json' --data-binary @- && echo
}

put /_inference/sparse_embedding/sidecar-splade "inference-sparse-${FLAVOUR}.json"
put /_inference/text_embedding/sidecar-minilm "inference-dense-${FLAVOUR}.json"
put /_ingest/pipeline/sidecar-sparse ingest-pipeline.json
put "/${INDEX}" index-mappings.json
