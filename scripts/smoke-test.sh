#!/usr/bin/env bash
# A tus upload with nothing but curl, interrupted and resumed, checked end to end:
#   1. POST    create the upload (name in Upload-Metadata, base64)
#   2. PATCH   send the first half
#   3. HEAD    ask the server how many bytes it has (what a client does after a network drop)
#   4. PATCH   send the rest from that offset
#   5. GET     poll /api/files/<id> until the file is processed
#   6. compare the server's SHA-256 and the downloaded content with the local file
#
# Usage:  bash scripts/smoke-test.sh <server-url> <file>
#         TOKEN=<jwt> bash scripts/smoke-test.sh https://uploads.example.com show.fseq   (AUTH_MODE=jwt)
# Needs bash, curl and sha256sum (or shasum); jq is used when present. Exit code 0 = all good.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 <server-url> <file>   (set TOKEN=<jwt> when the server uses AUTH_MODE=jwt)" >&2
  exit 2
fi
BASE="${1%/}"
FILE="$2"
TUS_PATH="${TUS_PATH:-/files}"
TIMEOUT="${TIMEOUT:-120}"
[ -f "$FILE" ] || { echo "no such file: $FILE" >&2; exit 2; }

AUTH=()
if [ -n "${TOKEN:-}" ]; then AUTH=(-H "Authorization: Bearer $TOKEN"); fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

sha256() { if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi; }
# The value of a response header (case-insensitive), without the trailing CR.
header() { grep -i "^$1:" "$2" | tail -n 1 | cut -d' ' -f2- | tr -d '\r'; }
# The first "key":"value" (top-level fields come before the nested scan.status) — or jq.
json_field() {
  if command -v jq >/dev/null; then jq -r ".$1 // empty" "$2"; else grep -o "\"$1\":\"[^\"]*\"" "$2" | head -n 1 | cut -d'"' -f4; fi
}
fail() { echo "FAIL: $*" >&2; [ -s "$WORK/body" ] && cat "$WORK/body" >&2 && echo >&2; exit 1; }

SIZE=$(wc -c < "$FILE" | tr -d ' ')
NAME=$(basename "$FILE")
HALF=$((SIZE / 2))
LOCAL_SHA=$(sha256 "$FILE")
echo "file:    $NAME ($SIZE bytes, sha256 $LOCAL_SHA)"

# 1. Create the upload.
STATUS=$(curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' -X POST "$BASE$TUS_PATH" ${AUTH[@]+"${AUTH[@]}"} \
  -H 'Tus-Resumable: 1.0.0' \
  -H "Upload-Length: $SIZE" \
  -H "Upload-Metadata: filename $(printf '%s' "$NAME" | base64 | tr -d '\n')")
[ "$STATUS" = 201 ] || fail "create answered $STATUS"
LOCATION=$(header Location "$WORK/headers")
case "$LOCATION" in http*) UPLOAD_URL="$LOCATION" ;; *) UPLOAD_URL="$BASE$LOCATION" ;; esac
ID="${UPLOAD_URL##*/}"
echo "created: $UPLOAD_URL"

# 2. The first half, then "the connection drops".
head -c "$HALF" "$FILE" > "$WORK/part1"
STATUS=$(curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' -X PATCH "$UPLOAD_URL" ${AUTH[@]+"${AUTH[@]}"} \
  -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' \
  --data-binary @"$WORK/part1")
[ "$STATUS" = 204 ] || fail "first PATCH answered $STATUS"
echo "sent:    bytes 0-$((HALF - 1))"

# 3. Where to resume: the server's offset.
STATUS=$(curl -sS -o /dev/null -D "$WORK/headers" -w '%{http_code}' -I "$UPLOAD_URL" ${AUTH[@]+"${AUTH[@]}"} -H 'Tus-Resumable: 1.0.0')
[ "$STATUS" = 200 ] || fail "HEAD answered $STATUS"
OFFSET=$(header Upload-Offset "$WORK/headers")
echo "resume:  the server has $OFFSET bytes"

# 4. The rest, from the server's offset.
if [ "$OFFSET" -lt "$SIZE" ]; then
  tail -c +"$((OFFSET + 1))" "$FILE" > "$WORK/part2"
  STATUS=$(curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' -X PATCH "$UPLOAD_URL" ${AUTH[@]+"${AUTH[@]}"} \
    -H 'Tus-Resumable: 1.0.0' -H "Upload-Offset: $OFFSET" -H 'Content-Type: application/offset+octet-stream' \
    -T "$WORK/part2")
  [ "$STATUS" = 204 ] || fail "second PATCH answered $STATUS"
  FINAL_OFFSET=$(header Upload-Offset "$WORK/headers")
  [ "$FINAL_OFFSET" = "$SIZE" ] || fail "the server has $FINAL_OFFSET of $SIZE bytes"
fi
echo "sent:    bytes $OFFSET-$((SIZE - 1)); upload complete"

# 5. Wait for processing (hashing, validation, scan, metadata).
DEADLINE=$((SECONDS + TIMEOUT))
while :; do
  STATUS=$(curl -sS -o "$WORK/body" -w '%{http_code}' "$BASE/api/files/$ID" ${AUTH[@]+"${AUTH[@]}"})
  [ "$STATUS" = 200 ] || fail "GET /api/files/$ID answered $STATUS"
  STATE=$(json_field status "$WORK/body")
  case "$STATE" in
    ready) break ;;
    rejected | infected | failed | expired | deleted) fail "the file is $STATE" ;;
  esac
  [ "$SECONDS" -lt "$DEADLINE" ] || fail "still $STATE after ${TIMEOUT}s"
  sleep 0.5
done
REMOTE_SHA=$(json_field sha256 "$WORK/body")
echo "ready:   sha256 $REMOTE_SHA"
[ "$REMOTE_SHA" = "$LOCAL_SHA" ] || fail "SHA-256 differs: local $LOCAL_SHA, server $REMOTE_SHA"

# 6. The bytes themselves.
STATUS=$(curl -sS -o "$WORK/download" -w '%{http_code}' "$BASE/api/files/$ID/content" ${AUTH[@]+"${AUTH[@]}"})
[ "$STATUS" = 200 ] || fail "download answered $STATUS"
cmp -s "$WORK/download" "$FILE" || fail "the downloaded bytes differ from $FILE"
echo "OK: $NAME uploaded in two parts, resumed at byte $OFFSET, byte-identical (id $ID)"
