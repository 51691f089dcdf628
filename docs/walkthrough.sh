#!/usr/bin/env bash
# Try Tessera with curl: register, confirm the address, sign in, read the profile, refresh
# (keeping the NEW refresh token each time: a spent one revokes the session), sign out.
# Against a running server: BASE (default http://127.0.0.1:8000). Run it from the server's
# directory: without SMTP the server writes the confirmation email to ./data/mail (MAIL_DIR);
# with SMTP, set TOKEN to the token of the emailed link. Stops at the first answer that is not 2xx.
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8000}
MAIL_DIR=${MAIL_DIR:-./data/mail}
EMAIL=${EMAIL:-ada.$(date +%s)@example.com}
PASSWORD='correct horse battery staple'

# every call: quiet, but an error answer stops the script and prints its body
curl() { command curl -sS --fail-with-body "$@"; }
# json FIELD: prints one field of the JSON object on stdin
json() { node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const v = JSON.parse(s)[process.argv[1]]; if (v == null) throw new Error(`no ${process.argv[1]} in ${s}`); console.log(v); });' "$1"; }

echo "# register $EMAIL"
curl "$BASE/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"first_name\":\"Ada\"}"
echo

echo "# confirm the address with the token of the emailed link"
# (the development server writes each email to $MAIL_DIR/<id>.txt; it may take a moment)
for _ in $(seq 100); do
  [ -n "${TOKEN:-}" ] && break
  TOKEN=$(node -e 'const fs = require("fs"), [dir, to] = process.argv.slice(1);
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".txt")) : []) {
      const text = fs.readFileSync(`${dir}/${f}`, "utf8"), link = text.match(/\S+\/auth\/confirm-email\?token=[\w-]+/);
      if (text.startsWith(`To: ${to}\n`) && link) console.log(new URL(link[0]).searchParams.get("token"));
    }' "$MAIL_DIR" "$EMAIL")
  [ -n "$TOKEN" ] || sleep 0.1
done
[ -n "${TOKEN:-}" ] || { echo "walkthrough: no confirmation email for $EMAIL in $MAIL_DIR (with SMTP, set TOKEN)" >&2; exit 1; }
curl "$BASE/auth/confirm-email" -H 'content-type: application/json' -d "{\"token\":\"$TOKEN\"}"
echo

echo "# sign in: the OAuth2 token endpoint, form-encoded like any OAuth2 client sends it"
TOKENS=$(curl "$BASE/auth/token" -d grant_type=password --data-urlencode "username=$EMAIL" --data-urlencode "password=$PASSWORD")
ACCESS=$(json access_token <<<"$TOKENS")
REFRESH=$(json refresh_token <<<"$TOKENS")
echo "signed in: token_type $(json token_type <<<"$TOKENS"), expires_in $(json expires_in <<<"$TOKENS")"

echo "# who am I"
curl "$BASE/users/me" -H "authorization: Bearer $ACCESS"
echo

echo "# refresh: the old refresh token is spent, keep the new one (OAuth2 form, then the JSON convenience)"
TOKENS=$(curl "$BASE/auth/token" -d grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH")
ACCESS=$(json access_token <<<"$TOKENS")
REFRESH=$(json refresh_token <<<"$TOKENS")
TOKENS=$(curl "$BASE/auth/refresh" -H 'content-type: application/json' -d "{\"refresh_token\":\"$REFRESH\"}")
ACCESS=$(json access_token <<<"$TOKENS")
REFRESH=$(json refresh_token <<<"$TOKENS")
echo "refreshed twice"

echo "# your sessions (devices)"
curl "$BASE/users/me/sessions" -H "authorization: Bearer $ACCESS"
echo

echo "# sign out of this session (POST /auth/logout/all signs out of every one)"
curl -X POST "$BASE/auth/logout" -H "authorization: Bearer $ACCESS"
echo "signed out"
