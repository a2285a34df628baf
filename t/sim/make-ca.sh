#!/usr/bin/env bash
# Makes a throwaway test CA and a server certificate for 127.0.0.1 and localhost, signed by
# it, for the simulators' HTTPS listeners. Nothing it writes belongs in git.
#   t/sim/make-ca.sh DIR   ->  DIR/ca.pem (trust this), DIR/ca.key, DIR/server.pem, DIR/server.key
set -euo pipefail
dir=${1:?usage: make-ca.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ordersync test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 644 ca.pem server.pem
echo "make-ca: $dir/ca.pem (CA), $dir/server.pem + server.key (127.0.0.1, localhost)"
