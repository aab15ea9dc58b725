#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/corpus/<target>/ and fuzz/data/pending-key.pk8.
#
# Realistic, valid inputs: certificates, keys and PKCS#12 files made by the openssl CLI (every form
# camera-upload accepts), multipart bodies sent by curl to a one-shot local listener, the API's JSON
# bodies, the config files, and rtnetlink dumps (RTM_GETADDR, RTM_GETLINK) read from this machine's
# kernel. Needs openssl (3.x, with the legacy provider for `pkcs12 -legacy`), curl and python3.
# Keys are fresh on every run, so the files change; the committed corpus is one such run.
#
# Usage: bash fuzz/make-seeds.sh     (from anywhere; replaces the seed-* files)
set -euo pipefail

FUZZ=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$FUZZ")
CORPUS="$FUZZ/corpus"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

for t in upload multipart json_bodies csr_subject config netlink acme scep enrollment dot1x; do
    mkdir -p "$CORPUS/$t"
    rm -f "$CORPUS/$t"/seed-*
done
mkdir -p "$FUZZ/data"

# ---------- certificates and keys (fixed dates: the upload target's clock is 2027-01-15) ----------

cat > ca.cnf <<'EOF'
[ca]
default_ca = local
[local]
dir = .
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
policy = anything
copy_extensions = none
unique_subject = no
[anything]
commonName = supplied
organizationName = optional
countryName = optional
[root_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate_ext]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_ext]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:192.168.1.120, IP:fd00::120, DNS:cam-lobby.local, DNS:cam-lobby
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
mkdir newcerts
: > index.txt
echo 1000 > serial

sign() { # sign CSR EXTENSIONS ISSUER_CERT ISSUER_KEY START END OUT [-selfsign]
    openssl ca -batch -config ca.cnf -notext -in "$1" -extensions "$2" -cert "$3" -keyfile "$4" \
        -startdate "$5" -enddate "$6" -out "$7" "${@:8}" 2>/dev/null
}

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root.key 2>/dev/null
openssl req -new -key root.key -subj "/O=Site Installer/CN=Site Installer Root CA" -out root.csr
sign root.csr root_ext root.csr root.key 20260101000000Z 20360101000000Z root.crt -selfsign
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out inter.key 2>/dev/null
openssl req -new -key inter.key -subj "/O=Site Installer/CN=Site Installer Issuing CA" -out inter.csr
sign inter.csr intermediate_ext root.crt root.key 20260101000000Z 20340101000000Z inter.crt

# The key of a request made on the camera (the upload target's pending CSR key).
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out pending.key 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in pending.key -outform DER -out "$FUZZ/data/pending-key.pk8"
openssl req -new -key pending.key -subj "/C=CN/ST=GD/L=SZ/O=SNL/OU=TECH/CN=MyCamera" -out pending.csr
sign pending.csr server_ext inter.crt inter.key 20260615000000Z 20270615000000Z pending.crt

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key 2>/dev/null
openssl req -new -key ec.key -subj "/CN=cam-lobby.local" -out ec.csr
sign ec.csr server_ext inter.crt inter.key 20260615000000Z 20270615000000Z ec.crt

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.key 2>/dev/null
openssl req -new -key ec384.key -subj "/CN=cam-lobby" -out ec384.csr
sign ec384.csr server_ext root.crt root.key 20260615000000Z 20280615000000Z ec384.crt

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
openssl req -new -key rsa.key -subj "/CN=192.168.1.120" -out rsa.csr
sign rsa.csr server_ext root.crt root.key 20260615000000Z 20270615000000Z rsa.crt

der() { openssl x509 -in "$1" -outform DER; }
SEP='--fuzz-field--'
# upload seed: NAME FLAGS CERT_FILE [KEY_FILE [PASSPHRASE]]
useed() {
    local out="$CORPUS/upload/seed-$1"
    { printf "\\x$2"; cat "$3"
      if [ -n "${4:-}${5:-}" ]; then printf '%s' "$SEP"; fi
      if [ -n "${4:-}" ]; then cat "$4"; fi
      if [ -n "${5:-}" ]; then printf '%s%s' "$SEP" "$5"; fi; } > "$out"
}

cat pending.crt inter.crt > pending-chain.pem
cat ec.crt inter.crt root.crt > ec-chain.pem
cat ec.key ec.crt inter.crt > ec-bundle.pem
cat inter.crt rsa.key root.crt rsa.crt > rsa-bundle-any-order.pem
der pending.crt > pending.der
der ec.crt > ec.der
openssl pkey -in ec.key -outform DER -out ec-pk8.der
openssl ec -in ec.key -out ec-sec1.pem 2>/dev/null
openssl ec -in ec.key -outform DER -out ec-sec1.der 2>/dev/null
openssl rsa -in rsa.key -traditional -out rsa-pkcs1.pem 2>/dev/null
openssl pkcs8 -topk8 -in ec.key -v2 aes-256-cbc -passout pass:secret -out ec-enc-aes.pem
openssl pkcs8 -topk8 -in rsa.key -v2 des3 -passout pass:secret -out rsa-enc-3des.pem
openssl pkcs8 -topk8 -in ec.key -scrypt -scrypt_N 1024 -scrypt_r 8 -scrypt_p 1 -passout pass:secret -out ec-enc-scrypt.pem
openssl ec -in ec.key -aes256 -passout pass:secret -out ec-legacy-enc.pem 2>/dev/null
openssl rsa -in rsa.key -traditional -des3 -passout pass:secret -out rsa-legacy-enc.pem 2>/dev/null
openssl pkcs12 -export -in ec.crt -inkey ec.key -certfile inter.crt -passout pass:secret -out ec.p12
openssl pkcs12 -export -legacy -in rsa.crt -inkey rsa.key -certfile root.crt -passout pass:secret -out rsa-legacy.p12
openssl pkcs12 -export -in ec384.crt -inkey ec384.key -passout pass: -out ec384-nopass.p12
sed 's/$/\r/' ec-bundle.pem > ec-bundle-crlf.pem
grep -v -- '-----' ec.crt > ec-bare-base64.txt
{ echo "Subject: cam-lobby.local"; echo "Issuer: Site Installer Issuing CA"; sed 's/^/    /' ec.crt; sed 's/^/    /' ec.key; } > ec-pasted-with-text.txt

useed pending-chain 01 pending-chain.pem
useed pending-der 01 pending.der
useed pending-csr-uploaded 01 pending.csr
useed ec-chain-pk8 00 ec-chain.pem ec.key
useed ec-der-pk8der 00 ec.der ec-pk8.der
useed ec-sec1 00 ec-chain.pem ec-sec1.pem
useed ec-sec1-der 00 ec.der ec-sec1.der
useed ec-bundle 00 ec-bundle.pem
useed ec-bundle-crlf 08 ec-bundle-crlf.pem
useed ec-bare-base64 00 ec-bare-base64.txt ec.key
useed ec-pasted-text 00 ec-pasted-with-text.txt
useed ec-enc-aes 00 ec-chain.pem ec-enc-aes.pem secret
useed ec-enc-scrypt 00 ec-chain.pem ec-enc-scrypt.pem secret
useed ec-legacy-enc 00 ec-chain.pem ec-legacy-enc.pem secret
useed ec-p12 00 ec.p12 "" secret
useed ec384-p12-nopass 00 ec384-nopass.p12
useed rsa-bundle-any-order 00 rsa-bundle-any-order.pem
useed rsa-pkcs1 00 rsa.crt rsa-pkcs1.pem
useed rsa-enc-3des 00 rsa.crt rsa-enc-3des.pem secret
useed rsa-legacy-enc 00 rsa.crt rsa-legacy-enc.pem secret
useed rsa-legacy-p12 00 rsa-legacy.p12 "" secret
useed key-mismatch 01 pending-chain.pem ec.key
useed ca-only 00 root.crt
useed expired-clock 04 ec-chain.pem ec.key

# ---------- multipart bodies, as curl sends them ----------

capture() { # NAME CURL_ARGS...: the Content-Type value, a newline, the body
    local name=$1; shift
    python3 - "$CORPUS/multipart/seed-$name" 3>port <<'EOF' &
import socket, sys, os
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
os.write(3, str(s.getsockname()[1]).encode()); os.close(3)
c, _ = s.accept(); data = b""
while b"\r\n\r\n" not in data: data += c.recv(65536)
head, body = data.split(b"\r\n\r\n", 1)
headers = {l.split(b":", 1)[0].lower(): l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")[1:]}
while len(body) < int(headers[b"content-length"]): body += c.recv(65536)
c.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"); c.close()
open(sys.argv[1], "wb").write(headers[b"content-type"] + b"\n" + body)
EOF
    local pid=$!
    while [ ! -s port ]; do sleep 0.05; done
    curl -s -X PUT "http://127.0.0.1:$(cat port)/api/v1/certificate" "$@" -o /dev/null
    wait "$pid"; rm -f port
}
capture cert-and-key -F certificate=@ec-chain.pem -F key=@ec.key
capture p12-and-passphrase -F certificate=@ec.p12 -F passphrase=secret
capture cert-only -F certificate=@pending.der
capture empty-key-field -F certificate=@ec-bundle.pem -F key= -F passphrase=
# What Chromium's upload form sends (hand-written in its format).
{ printf 'multipart/form-data; boundary=----WebKitFormBoundaryq5UcXGzLkqD3wM1h\n'
  printf -- '------WebKitFormBoundaryq5UcXGzLkqD3wM1h\r\nContent-Disposition: form-data; name="certificate"; filename="server.crt"\r\nContent-Type: application/x-x509-ca-cert\r\n\r\n'
  cat ec.crt
  printf -- '\r\n------WebKitFormBoundaryq5UcXGzLkqD3wM1h\r\nContent-Disposition: form-data; name="key"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n'
  printf -- '\r\n------WebKitFormBoundaryq5UcXGzLkqD3wM1h\r\nContent-Disposition: form-data; name="passphrase"\r\n\r\n'
  printf -- '\r\n------WebKitFormBoundaryq5UcXGzLkqD3wM1h--\r\n'
} > "$CORPUS/multipart/seed-chromium-form"

# ---------- JSON request bodies ----------

j=$CORPUS/json_bodies
printf '%s' '{"password":"a long secret"}' > "$j/seed-password"
printf '%s' '{"password":"p\u00e4ss w\u00f6rd \ud83d\udd12 with unicode and \"quotes\""}' > "$j/seed-password-unicode"
printf '%s' '{"subject":{"C":"CN","ST":"GD","L":"SZ","O":"SNL","OU":"TECH","CN":"MyCamera"},"subject_alt_names":["192.168.1.120","cam.local"],"key_type":"ecdsa-p256"}' > "$j/seed-csr-readme"
printf '%s' '{"subject":{"CN":"192.168.1.120"},"key_type":"rsa-2048"}' > "$j/seed-csr-cn-only"
printf '%s' '{"subject":{},"subject_alt_names":["fd00::120","[fe80::1]","*.site.home.arpa"],"key_type":"ecdsa-p384"}' > "$j/seed-csr-ipv6"
printf '%s\n' '{' '  "subject": {"O": "Société Générale", "CN": "cam-lobby.local"},' '  "subject_alt_names": [],' '  "key_type": "rsa-3072"' '}' > "$j/seed-csr-pretty"

# ---------- CSR subject lines: C, ST, L, O, OU, CN, then subjectAltNames ----------

c=$CORPUS/csr_subject
printf 'CN\nGD\nSZ\nSNL\nTECH\nMyCamera\n192.168.1.120\ncam.local' > "$c/seed-readme"
printf '\n\n\n\n\n192.168.1.120' > "$c/seed-cn-ip-only"
printf 'de\nBayern\nMünchen\nSociété Générale\nÜberwachung\ncam-lobby.site.home.arpa\nfd00::120\n[fe80::1]\n*.site.home.arpa\n10.0.0.7' > "$c/seed-unicode-ipv6-wildcard"

# ---------- configuration files ----------

k=$CORPUS/config
cp "$ROOT/rootfs-overlay/etc/camera-https/config.json" "$k/seed-rootfs-default"
cat > "$k/seed-readme" <<'EOF'
{
  "camera": {
    "model": "IP Camera",
    "hostname": "cam-lobby",
    "extra_names": ["cam-lobby.site.home.arpa"],
    "loopback": false,
    "name_constraints": {
      "permitted_subnets": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                            "100.64.0.0/10", "fc00::/7", "fe80::/10"],
      "permitted_dns": ["local", "home.arpa"]
    },
    "server_cert_days": 365,
    "renew_before_days": 30
  },
  "web": { "https": "[::]:443", "http": "[::]:80", "tls": "standard", "max_connections": 256 }
}
EOF
printf '%s\n' '{' '  "camera": {"model": "Dev Camera", "loopback": true},' '  "web": {"https": "127.0.0.1:8443", "http": "127.0.0.1:8080"}' '}' > "$k/seed-dev"
printf '%s' '{"camera":{"hostname":"cam-7","server_cert_days":90,"renew_before_days":7,"name_constraints":{"permitted_subnets":["192.168.1.0/24","fd00::/8"],"permitted_dns":[".site.home.arpa"]}},"web":{"http":null,"tls":"high-security","handshake_timeout_secs":5}}' > "$k/seed-tight"
printf '{}' > "$k/seed-empty"

# ---------- rtnetlink dumps from this machine's kernel ----------

python3 - "$CORPUS/netlink" <<'EOF'
import socket, struct, sys
out = sys.argv[1]
NLM_F_REQUEST, NLM_F_DUMP, NLMSG_DONE = 1, 0x300, 3
for name, kind, body_len in (("addr", 22, 8), ("link", 18, 16)):  # RTM_GETADDR, RTM_GETLINK
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, 0))
    s.send(struct.pack("=IHHII", 16 + body_len, kind, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + bytes(body_len))
    n, done = 0, False
    while not done:
        data = s.recv(65536)
        with open(f"{out}/seed-dump-{name}-{n}", "wb") as f:
            f.write(data)
        n += 1
        off = 0
        while off + 16 <= len(data):
            length, typ = struct.unpack_from("=IH", data, off)
            done |= typ == NLMSG_DONE
            off += max(16, (length + 3) & ~3)
# An address notification (RTM_DELADDR, IPv6 with IFA_FLAGS) and a dump error, built by hand.
def attr(kind, payload):
    a = struct.pack("=HH", 4 + len(payload), kind) + payload
    return a + bytes(-len(a) % 4)
body = struct.pack("=BBBBI", 10, 64, 0, 0, 2) + attr(1, socket.inet_pton(socket.AF_INET6, "fd00::120")) + attr(8, struct.pack("=I", 0x40))
with open(f"{out}/seed-deladdr-notification", "wb") as f:
    f.write(struct.pack("=IHHII", 16 + len(body), 21, 0, 0, 0) + body)
with open(f"{out}/seed-error", "wb") as f:
    f.write(struct.pack("=IHHIIi", 36, 2, 0, 1, 0, -16) + bytes(16))
EOF

# ---------- ACME answers (RFC 8555 section 7 shapes, as Pebble sends them) ----------

A="$CORPUS/acme"
cat > "$A/seed-directory" <<'JSON'
{"keyChange":"https://ca.site.home.arpa/rollover-account-key","meta":{"externalAccountRequired":true,"termsOfService":"data:text/plain,Do%20what%20thou%20wilt"},"newAccount":"https://ca.site.home.arpa/sign-me-up","newNonce":"https://ca.site.home.arpa/nonce-plz","newOrder":"https://ca.site.home.arpa/order-plz","revokeCert":"https://ca.site.home.arpa/revoke-cert"}
JSON
cat > "$A/seed-account" <<'JSON'
{"status":"valid","contact":["mailto:cameras@site.home.arpa"],"orders":"https://ca.site.home.arpa/list-orderz/1","key":{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}
JSON
cat > "$A/seed-order" <<'JSON'
{"status":"pending","expires":"2027-01-15T00:00:00Z","identifiers":[{"type":"ip","value":"192.168.1.120"},{"type":"ip","value":"fd00::120"},{"type":"dns","value":"cam-lobby.local"}],"finalize":"https://ca.site.home.arpa/finalize-order/x","authorizations":["https://ca.site.home.arpa/authZ/a","https://ca.site.home.arpa/authZ/b"],"certificate":"https://ca.site.home.arpa/certZ/c"}
JSON
cat > "$A/seed-authorization" <<'JSON'
{"status":"pending","identifier":{"type":"ip","value":"192.168.1.120"},"challenges":[{"type":"http-01","url":"https://ca.site.home.arpa/chalZ/1","token":"DGyRejmCefe7v4NfDGDKfA","status":"pending"},{"type":"tls-alpn-01","url":"https://ca.site.home.arpa/chalZ/2","token":"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA","status":"pending"}],"expires":"2027-01-15T00:00:00Z"}
JSON
cat > "$A/seed-challenge" <<'JSON'
{"type":"http-01","url":"https://ca.site.home.arpa/chalZ/1","token":"DGyRejmCefe7v4NfDGDKfA","status":"invalid","error":{"type":"urn:ietf:params:acme:error:connection","detail":"connection refused","status":400}}
JSON
cat > "$A/seed-problem" <<'JSON'
{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Order included an identifier for which issuance is forbidden by policy","status":400,"subproblems":[{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"blocked","identifier":{"type":"dns","value":"blocked.home.arpa"}}]}
JSON
cat ec.crt inter.crt > "$A/seed-chain.pem"

# ---------- SCEP answers (Debian's scepserver, on loopback) and a CMS SignedData ----------

S="$CORPUS/scep"
scepserver ca -init -keySize 2048 -depot scepdepot >/dev/null
scepserver -depot scepdepot -port 18981 -challenge seed >scepserver.log 2>&1 &
SCEP_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:18981/scep?operation=GetCACaps" -o "$S/seed-getcacaps" && break; sleep 0.1; done
curl -sf "http://127.0.0.1:18981/scep?operation=GetCACert" -o "$S/seed-getcacert"
kill "$SCEP_PID"
openssl cms -sign -binary -nodetach -in ec.crt -signer inter.crt -inkey inter.key -outform DER -out "$S/seed-signed-data.der"
openssl crl2pkcs7 -nocrl -certfile inter.crt -outform DER -out "$S/seed-degenerate.p7b"

# ---------- enrollment settings ----------

E="$CORPUS/enrollment"
printf '%s' '{"protocol":"acme","url":"http://10.0.0.9:14000/dir","challenge_types":["http-01"]}' > "$E/seed-acme-http"
python3 - "$E" root.crt <<'PY'
import json, sys
out, ca = sys.argv[1], open(sys.argv[2]).read()
json.dump({"protocol": "acme", "url": "https://ca.site.home.arpa/acme/directory", "trust": ca,
           "eab": {"kid": "kid-1", "hmac_key": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"},
           "challenge_types": ["tls-alpn-01", "http-01"], "key_type": "rsa-2048", "contact": ["mailto:a@site.home.arpa"]},
          open(f"{out}/seed-acme-full", "w"))
json.dump({"protocol": "scep", "url": "https://ca.site.home.arpa/certsrv/mscep/mscep.dll", "trust": ca,
           "challenge": "0123456789ABCDEF", "subject": {"CN": "cam-lobby", "O": "Site", "OU": "Cameras"}},
          open(f"{out}/seed-scep", "w"))
PY

# ---------- 802.1X: wpa_supplicant's control-socket messages (as 2.10 sends them) and settings ----------
# The first byte picks the reader: 0 events, 1 STATUS / LIST_NETWORKS answers, 2 settings JSON.

D="$CORPUS/dot1x"
{ printf '\000'; printf '%s\n' "<3>CTRL-EVENT-EAP-STARTED EAP authentication started" \
    "<3>CTRL-EVENT-EAP-METHOD EAP vendor 0 method 13 (TLS) selected" \
    "<3>CTRL-EVENT-EAP-PEER-CERT depth=0 subject='/CN=radius.site.example' hash=0a1b2c" \
    "<3>CTRL-EVENT-EAP-SUCCESS EAP authentication completed successfully"; } > "$D/seed-events"
{ printf '\000'; printf '%s\n' \
    "<3>CTRL-EVENT-EAP-TLS-CERT-ERROR reason=1 depth=0 subject='/CN=radius.site.example' err='unable to get local issuer certificate'" \
    "<3>CTRL-EVENT-EAP-STATUS status='remote certificate verification' parameter='failure'" \
    "<3>CTRL-EVENT-EAP-FAILURE EAP authentication failed"; } > "$D/seed-cert-error"
{ printf '\001'; printf '%s\n' bssid=01:80:c2:00:00:03 freq=0 ssid= id=0 mode=station "key_mgmt=IEEE 802.1X (no WPA)" \
    wpa_state=COMPLETED "Supplicant PAE state=AUTHENTICATED" suppPortStatus=Authorized "EAP state=SUCCESS" \
    "selectedMethod=13 (EAP-TLS)"; } > "$D/seed-status"
{ printf '\001'; printf 'network id / ssid / bssid / flags\n0\t\tany\t[CURRENT]\n'; } > "$D/seed-networks"
{ printf '\002'; printf '%s' '{"enabled": true, "interface": "eth0", "identity": "cam-1", "eapol_version": 1, "server_ca_pem": "", "domain_match": "radius.site.example", "trial_seconds": 180}'; } > "$D/seed-settings"

du -sh "$CORPUS" "$FUZZ/data"
