#!/bin/sh
# Keeps Kamailio's dispatcher list equal to the ready voicemail pods (the
# headless Service's A records) and reloads it when it changes.
set -eu
svc="$1"; list="$2"; ctl="$3"
while :; do
  new=$(getent ahostsv4 "$svc" | awk '{print $1}' | sort -u | awk '{printf "1 sip:%s:5060 0 0\n", $1}')
  if [ -n "$new" ] && [ "$new" != "$(cat "$list" 2>/dev/null)" ]; then
    printf '%s\n' "$new" > "$list.tmp" && mv "$list.tmp" "$list"
    kamcmd -s "$ctl" dispatcher.reload >/dev/null 2>&1 || true
  fi
  sleep 5
done
