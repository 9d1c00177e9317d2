#!/bin/bash
# Docker HEALTHCHECK for kidsafe-dns, without dig: one DNS query over UDP and one over TCP
# to 127.0.0.1 (bash's /dev/udp and /dev/tcp). Healthy when both get an answer carrying the
# query's ID with the QR bit set, whatever its RCODE: a SERVFAIL because the upstream is
# unreachable still means kidsafe-dns is serving (blocked names are answered locally), and
# restarting the container would not bring the upstream back.
# Needs loopback in server.allow_clients (the default) and server.listen on port 53 of
# 0.0.0.0 or 127.0.0.1 (KIDSAFE_HEALTH_PORT overrides the port).
# Exit 0 = healthy, 1 = not; HEALTHCHECK --timeout ends a query that gets no answer.
set -u
port=${KIDSAFE_HEALTH_PORT:-53}

# A query for A health.kidsafe-dns.invalid (RFC 6761: never exists, no list blocks it).
# The ID's bytes are kept in 0x20-0x7f: no byte of the query may be a newline (0x0a),
# where bash's printf flushes, splitting the UDP datagram in two.
hi=$((RANDOM % 96 + 32)) lo=$((RANDOM % 96 + 32))
id=$((hi * 256 + lo))
idhex=$(printf '\\x%02x\\x%02x' "$hi" "$lo")
query="${idhex}\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06health\x0bkidsafe-dns\x07invalid\x00\x00\x01\x00\x01"

answered() {  # answered BYTES...: first two are the ID, third holds the QR bit
  [ "$#" -ge 3 ] && [ $(($1 * 256 + $2)) -eq "$id" ] && [ $(($3 & 128)) -ne 0 ]
}

udp() {
  exec 3<>"/dev/udp/127.0.0.1/$port" || return 1
  # shellcheck disable=SC2059 # the query is the format: its \x escapes are the bytes
  printf "$query" >&3
  # shellcheck disable=SC2046 # word splitting wanted: one argument per byte
  answered $(head -c 3 <&3 | od -An -tu1)
  local ok=$?
  exec 3<&-
  return "$ok"
}

tcp() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  # Two-byte length prefix: 12-byte header + 32-byte question = 44.
  # shellcheck disable=SC2059
  printf "\x00\x2c${query}" >&3
  # shellcheck disable=SC2046
  set -- $(head -c 5 <&3 | od -An -tu1)
  shift 2  # the length prefix
  answered "$@"
  local ok=$?
  exec 3<&-
  return "$ok"
}

udp || { echo "kidsafe-dns: no DNS answer over UDP on 127.0.0.1:$port" >&2; exit 1; }
tcp || { echo "kidsafe-dns: no DNS answer over TCP on 127.0.0.1:$port" >&2; exit 1; }
echo "kidsafe-dns answers on 127.0.0.1:$port (UDP and TCP)"
