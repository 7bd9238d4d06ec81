#!/usr/bin/env bash
# Run flows against Prism serving each vendor's own spec with --errors: Prism answers any
# request that breaks the spec with an error (and logs a violation), so every row must be
# sent and Prism's log must hold no violation.
#   8x8 SMS:      the quickstart flow (examples/quickstart) and the get_message look-up
#   Text Request: send_message, upsert_contact (custom_fields too; the bulk update), archive_conversation,
#                 unarchive_conversation, delete_contact, and the get_contact and get_messages
#                 look-ups over a small contact list
#   Aranda:       create_case, update_case, add_note, attach_file, and the get_case and
#                 search_cases look-ups
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
specs="${SPECS:-$root/../shared/specs}"

if ! command -v npx >/dev/null 2>&1; then
  echo "prism-check: installing Node.js (npx) from the system's packages" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
cargo build --quiet
bin="$root/target/debug/switchboard"

work="$(mktemp -d)"
prism_pid=""
cleanup() {
  # Prism runs in its own process group (npx starts node as a child): stop them all.
  [ -n "$prism_pid" ] && kill -- "-$prism_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  for candidate in $(seq 4010 4099); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return; fi
  done
}

# start_prism SPEC LOG: serves SPEC on a free port, sets $port and $prism_pid
start_prism() {
  port="$(free_port)"
  setsid npx --yes @stoplight/prism-cli@5.16.0 mock --errors -p "$port" "$1" >"$2" 2>&1 &
  prism_pid=$!
  for _ in $(seq 1 360); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
    if ! kill -0 "$prism_pid" 2>/dev/null; then cat "$2" >&2; exit 1; fi
    sleep 0.5
  done
}

stop_prism() {
  kill -- "-$prism_pid" 2>/dev/null || true
  prism_pid=""
}

# verdict NAME LOG STATUS
verdict() {
  local violations requests
  # Prism logs a refused request as "Request did not pass the validation rules"
  # followed by one "[VALIDATOR] ✖ error" line per broken rule.
  violations="$(grep -ciE "did not pass the validation rules|violation" "$2" || true)"
  requests="$(grep -c "Request received" "$2" || true)"
  echo "prism-check: $1: $requests request(s) reached Prism, $violations violation(s) logged"
  if [ "$3" -ne 0 ] || [ "$violations" -ne 0 ]; then
    cat "$2" >&2
    exit 1
  fi
}

# --- 8x8 SMS -------------------------------------------------------------------------
start_prism "$specs/8x8-sms-api.openapi.json" "$work/8x8.log"
cp -r "$root/examples/quickstart" "$work/8x8"
chmod 600 "$work/8x8/accounts.yaml"
status=0
SWITCHBOARD_SANDBOX_URL="http://127.0.0.1:$port" EIGHTX8_API_KEY="prism-check-key" \
  "$bin" run order-sms --flows "$work/8x8" --state "$work/8x8-state" || status=$?
# The get_message look-up on two umids (Prism answers with the spec's example).
printf 'umid,phone\ndec02e44-c76f-4a0a-b69f-6ac2a4386eb9,+380501234567\n5b0c0001-0000-4000-8000-000000000001,+380501234568\n' >"$work/8x8/sent.csv"
cat >"$work/8x8/status.yaml" <<'FLOW'
source: {connector: csv, path: sent.csv, key: umid, backlog: send}
lookup: {connector: 8x8, account: shop-8x8, action: get_message, query: "{{umid}}", as: sms, required: false}
receiver: {connector: 8x8, action: send_sms, account: shop-8x8}
map:
  destination: "{{phone}}"
  text: "Your last message was {{sms.status.state}}"
FLOW
SWITCHBOARD_SANDBOX_URL="http://127.0.0.1:$port" EIGHTX8_API_KEY="prism-check-key" \
  "$bin" run status --flows "$work/8x8" --state "$work/8x8-state" || status=$?
verdict "8x8 send_sms + get_message" "$work/8x8.log" "$status"
stop_prism

# --- Text Request --------------------------------------------------------------------
# Prism serves the swagger without its /api/v3 base path, so base_url is the bare host.
start_prism "$specs/textrequest.swagger.json" "$work/tr.log"
mkdir -p "$work/tr"
cat >"$work/tr/accounts.yaml" <<ACCOUNTS
tr-main:
  connector: textrequest
  api_key: prism-check-key
  base_url: http://127.0.0.1:$port
ACCOUNTS
printf 'id,name,phone,groups,vip\nc-1,Olena,4239876543,"3, 5",yes\nc-2,Tom,+14239876544,7,no\n' >"$work/tr/contacts.csv"
cat >"$work/tr/welcome.yaml" <<'FLOW'
source: {connector: csv, path: contacts.csv, key: id, backlog: send}
receiver: {connector: textrequest, action: send_message, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{phone}}"
  body: "Welcome {{name}}!"
  sender_name: "Front desk"
FLOW
cat >"$work/tr/contacts.yaml" <<'FLOW'
source: {connector: csv, path: contacts.csv, key: id, backlog: send}
receiver: {connector: textrequest, action: upsert_contact, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{phone}}"
  first_name: "{{name}}"
  groups: "{{groups}}"
  is_archived: false
  custom_fields: [{id: "f-1", value: "{{vip}}"}]
FLOW
cat >"$work/tr/archive.yaml" <<'FLOW'
source: {connector: csv, path: contacts.csv, key: id, backlog: send}
receiver: {connector: textrequest, action: archive_conversation, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{phone}}"
FLOW
for action in unarchive_conversation delete_contact; do
  cat >"$work/tr/$action.yaml" <<FLOW
source: {connector: csv, path: contacts.csv, key: id, backlog: send}
receiver: {connector: textrequest, action: $action, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{phone}}"
FLOW
done
# 25 contacts with batch: 10 go through the bulk update (runs of 20 or more are batched).
{
  echo 'id,name,phone'
  for i in $(seq 10 34); do echo "b-$i,Name $i,42398765$i"; done
} >"$work/tr/many.csv"
cat >"$work/tr/bulk.yaml" <<'FLOW'
source: {connector: csv, path: many.csv, key: id, backlog: send}
receiver: {connector: textrequest, action: upsert_contact, account: tr-main, dashboard_id: 121, batch: 10}
map:
  phone_number: "{{phone}}"
  first_name: "{{name}}"
  custom_fields: [{id: "f-1", value: "bulk"}]
FLOW
printf 'id,phone,amount,payment\np-1,4239876543,12.50,88\np-2,+14239876544,7,89\n' >"$work/tr/payments.csv"
cat >"$work/tr/pay.yaml" <<'FLOW'
source: {connector: csv, path: payments.csv, key: id, backlog: send}
receiver: {connector: textrequest, action: create_payment, account: tr-main, dashboard_id: 121}
map:
  customer_phone: "{{phone}}"
  amount_requested: "{{amount}}"
  message: "Your order {{id}}"
  reference_number: "{{id}}"
FLOW
for action in mark_payment_paid send_payment_reminder cancel_payment; do
  cat >"$work/tr/$action.yaml" <<FLOW
source: {connector: csv, path: payments.csv, key: id, backlog: send}
lookup: {connector: textrequest, account: tr-main, action: get_payment, dashboard_id: 121, query: "{{payment}}", as: found, required: false}
receiver: {connector: textrequest, action: $action, account: tr-main, dashboard_id: 121}
map:
  payment_id: "{{payment}}"
FLOW
done
cat >"$work/tr/changed.yaml" <<'FLOW'
source: {connector: textrequest, account: tr-main, dashboard_id: 121, reads: contacts, filter: {is_archived: "false"}, backlog: send}
# Prism's generated contacts have no real phone number: they go to a group name instead.
receiver: {connector: textrequest, action: create_group, account: tr-main, dashboard_id: 121}
map:
  name: "changed: {{phone_number}}"
FLOW
cat >"$work/tr/paid.yaml" <<'FLOW'
source: {connector: textrequest, account: tr-main, dashboard_id: 121, reads: payments, status: paid, backlog: send}
receiver: {connector: textrequest, action: send_message, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{customer_phone}}"
  body: "Thank you"
FLOW
printf 'id,group,name\ng-1,3,VIP\ng-2,5,Staff\n' >"$work/tr/groups.csv"
cat >"$work/tr/create_group.yaml" <<'FLOW'
source: {connector: csv, path: groups.csv, key: id, backlog: send}
receiver: {connector: textrequest, action: create_group, account: tr-main, dashboard_id: 121}
map: {name: "{{name}}", notes: "made by a flow"}
FLOW
cat >"$work/tr/update_group.yaml" <<'FLOW'
source: {connector: csv, path: groups.csv, key: id, backlog: send}
lookup: {connector: textrequest, account: tr-main, action: get_group, dashboard_id: 121, query: "{{group}}", as: found, required: false}
receiver: {connector: textrequest, action: update_group, account: tr-main, dashboard_id: 121}
map: {group_id: "{{group}}", name: "{{name}} (2026)"}
FLOW
cat >"$work/tr/delete_group.yaml" <<'FLOW'
source: {connector: csv, path: groups.csv, key: id, backlog: send}
receiver: {connector: textrequest, action: delete_group, account: tr-main, dashboard_id: 121}
map: {group_id: "{{group}}"}
FLOW
printf 'line,name,phone,dashboard\nl-1,Front desk,4235550100,130\nl-2,Support,+14235550101,131\n' >"$work/tr/lines.csv"
cat >"$work/tr/create_dashboard.yaml" <<'FLOW'
source: {connector: csv, path: lines.csv, key: line, backlog: send}
receiver: {connector: textrequest, action: create_dashboard, account: tr-main}
map: {name: "{{name}}", phone: "{{phone}}"}
FLOW
cat >"$work/tr/rename_dashboard.yaml" <<'FLOW'
source: {connector: csv, path: lines.csv, key: line, backlog: send}
lookup: {connector: textrequest, account: tr-main, action: get_dashboard, query: "{{dashboard}}", as: found, required: false}
receiver: {connector: textrequest, action: rename_dashboard, account: tr-main}
map: {dashboard: "{{dashboard}}", name: "{{name}} (2026)"}
FLOW
cat >"$work/tr/delete_dashboard.yaml" <<'FLOW'
source: {connector: csv, path: lines.csv, key: line, backlog: send}
receiver: {connector: textrequest, action: delete_dashboard, account: tr-main}
map: {dashboard: "{{dashboard}}"}
FLOW
# The list look-ups, each on the contact rows (what they find is not used: the requests are checked).
for action in list_tags list_custom_fields list_groups list_conversations; do
  cat >"$work/tr/$action.yaml" <<FLOW
source: {connector: csv, path: contacts.csv, key: id, backlog: send}
lookup: {connector: textrequest, account: tr-main, action: $action, dashboard_id: 121, query: "{{name}}", as: found, required: false}
receiver: {connector: textrequest, action: archive_conversation, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{phone}}"
FLOW
done
cat >"$work/tr/list_dashboards.yaml" <<'FLOW'
source: {connector: csv, path: contacts.csv, key: id, backlog: send}
lookup: {connector: textrequest, account: tr-main, action: list_dashboards, query: "*", as: found, required: false}
receiver: {connector: textrequest, action: archive_conversation, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{phone}}"
FLOW
# The look-ups: the contact and the conversation of each row, then a message.
cat >"$work/tr/lookups.yaml" <<'FLOW'
source: {connector: csv, path: contacts.csv, key: id, backlog: send}
lookup: {connector: textrequest, account: tr-main, action: get_contact, dashboard_id: 121, query: "{{phone}}", required: false}
receiver: {connector: textrequest, action: send_message, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{phone}}"
  body: "Hello again {{name}}"
FLOW
cat >"$work/tr/history.yaml" <<'FLOW'
source: {connector: csv, path: contacts.csv, key: id, backlog: send}
lookup: {connector: textrequest, account: tr-main, action: get_messages, dashboard_id: 121, query: "{{phone}}", required: false}
receiver: {connector: textrequest, action: archive_conversation, account: tr-main, dashboard_id: 121}
map:
  phone_number: "{{phone}}"
FLOW
chmod 600 "$work/tr/accounts.yaml"
status=0
for flow in welcome contacts bulk archive unarchive_conversation delete_contact lookups history pay mark_payment_paid send_payment_reminder cancel_payment paid changed create_group update_group delete_group create_dashboard rename_dashboard delete_dashboard list_tags list_custom_fields list_groups list_conversations list_dashboards; do
  "$bin" run "$flow" --flows "$work/tr" --state "$work/tr-state" || status=$?
done
verdict "Text Request send_message + upsert_contact (single and bulk) + archive/unarchive_conversation + delete_contact + create_payment + mark_payment_paid + send_payment_reminder + cancel_payment + create/update/delete_group + create/rename/delete_dashboard + get_dashboard + the list look-ups + get_contact + get_messages + get_payment + get_group + the payments and contacts sources" "$work/tr.log" "$status"
stop_prism

# --- Aranda ASMS ---------------------------------------------------------------------
# Again without the swagger's base path (/asmsadapter/api/asms).
start_prism "$specs/aranda.swagger.json" "$work/aranda.log"
mkdir -p "$work/aranda"
cat >"$work/aranda/accounts.yaml" <<ACCOUNTS
asms:
  connector: aranda
  api_key: prism-check-token
  instance_url: https://help.example.com/ASMS
  base_url: http://127.0.0.1:$port
ACCOUNTS
printf 'case,project,subject,note\nRF-1,4,Missed enquiry 1,Called back\nRF-2,5,Missed enquiry 2,No answer\n' >"$work/aranda/cases.csv"
cat >"$work/aranda/create.yaml" <<'FLOW'
source: {connector: csv, path: cases.csv, key: case, backlog: send}
receiver: {connector: aranda, action: create_case, account: asms}
map:
  itemType: 1
  projectId: "{{project}}"
  serviceId: 7
  categoryId: 3
  subject: "{{subject}}"
  additionalFields: [{fieldId: "channel", values: ["CINNOX"]}]
FLOW
cat >"$work/aranda/update.yaml" <<'FLOW'
source: {connector: csv, path: cases.csv, key: case, backlog: send}
receiver: {connector: aranda, action: update_case, account: asms}
map:
  ticketId: "{{case}}"
  stateId: 2
  commentary: "{{note}}"
FLOW
cat >"$work/aranda/note.yaml" <<'FLOW'
source: {connector: csv, path: cases.csv, key: case, backlog: send}
receiver: {connector: aranda, action: add_note, account: asms}
map:
  ticketId: "{{case}}"
  message: "{{note}}"
FLOW
printf 'vacation approved\n' >"$work/aranda/form.txt"
cat >"$work/aranda/attach.yaml" <<FLOW
source: {connector: csv, path: cases.csv, key: case, backlog: send}
receiver: {connector: aranda, action: attach_file, account: asms}
map:
  ticketId: "{{case}}"
  fileName: form.txt
  path: $work/aranda/form.txt
FLOW
# Prism answers the reads with an empty 200 (its swagger names no content type): the
# look-ups go on without a result; what is checked is that each request keeps the contract.
cat >"$work/aranda/lookup.yaml" <<'FLOW'
source: {connector: csv, path: cases.csv, key: case, backlog: send}
lookup: {connector: aranda, account: asms, action: get_case, query: "{{case}}", as: found, required: false}
receiver: {connector: aranda, action: add_note, account: asms}
map:
  ticketId: "{{case}}"
  message: "{{note}}"
FLOW
cat >"$work/aranda/search.yaml" <<'FLOW'
source: {connector: csv, path: cases.csv, key: case, backlog: send}
lookup: {connector: aranda, account: asms, action: search_cases, field: Subject, operator: Like, query: "{{subject}}", required: false}
receiver: {connector: aranda, action: add_note, account: asms}
map:
  ticketId: "{{case}}"
  message: "{{note}}"
FLOW
cat >"$work/aranda/changed.yaml" <<'FLOW'
source:
  connector: aranda
  account: asms
  filters: [{field: StateName, value: Solved}, {field: Subject, operator: Like, value: printer}]
  backlog: send
receiver: {connector: aranda, action: add_note, account: asms}
map:
  ticketId: "{{idByProject}}"
  message: "{{subject}} is {{stateName}}"
FLOW
chmod 600 "$work/aranda/accounts.yaml"
status=0
for flow in create update note attach lookup search changed; do
  "$bin" run "$flow" --flows "$work/aranda" --state "$work/aranda-state" || status=$?
done
verdict "Aranda create_case + update_case + add_note + attach_file + get_case + search_cases + the cases source" "$work/aranda.log" "$status"
stop_prism
