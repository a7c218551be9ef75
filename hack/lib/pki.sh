# shellcheck shell=bash
# Certificates for the test cluster, and the kubeconfigs that carry them.
#
# Sourced by cluster-up.sh (control plane) and by the node scripts (kubelet). Everything is
# signed by one CA kept in the cluster's pki dir. Keys are ECDSA P-256: generating them is
# instant, which keeps a cold cluster start short, and both Go and rustls accept them.
# Every function is idempotent: an existing certificate is kept, so calling it again is cheap.

# pki_ca DIR: creates DIR/ca.crt and DIR/ca.key unless they exist.
pki_ca() {
  local dir=$1
  mkdir -p "$dir"
  [[ -s $dir/ca.crt && -s $dir/ca.key ]] && return 0
  # A config of our own, not the system openssl.cnf: its default extensions differ between
  # distributions, and rustls (kube-rs) rejects a CA without a critical CA:TRUE.
  local cnf
  cnf=$(mktemp)
  cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
EOF
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=pgop-test-ca" -days 3650 -sha256 \
    -config "$cnf" -extensions ca -out "$dir/ca.crt"
  rm -f "$cnf"
  chmod 600 "$dir/ca.key"
}

# pki_cert DIR NAME CN ORG USAGE [SAN...]: DIR/NAME.crt and DIR/NAME.key signed by DIR's CA.
#   ORG may be empty; USAGE is client, server or both; SANs are openssl style
#   (IP:127.0.0.1, DNS:localhost) and required for server certificates.
pki_cert() {
  local dir=$1 name=$2 cn=$3 org=$4 usage=$5
  shift 5
  [[ -s $dir/$name.crt && -s $dir/$name.key ]] && return 0
  [[ -s $dir/ca.key ]] || { echo "pki: no CA in $dir (call pki_ca first)" >&2; return 1; }
  local eku subj
  case $usage in
    client) eku=clientAuth ;;
    server) eku=serverAuth ;;
    both) eku=serverAuth,clientAuth ;;
    *) echo "pki: usage must be client, server or both, not '$usage'" >&2; return 1 ;;
  esac
  subj="/CN=$cn"
  [[ -n $org ]] && subj="/O=$org$subj"
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints = critical,CA:FALSE"
    echo "keyUsage = critical,digitalSignature"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid,issuer"
    if (($# > 0)); then
      echo "subjectAltName = $(IFS=,; echo "$*")"
    fi
  } >"$ext"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
  chmod 600 "$dir/$name.key"
  # Random serials: the CA is reused across calls, and duplicate serials from one issuer make
  # some clients refuse the second certificate.
  openssl req -new -key "$dir/$name.key" -subj "$subj" -config /dev/null 2>/dev/null |
    openssl x509 -req -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 3650 -sha256 -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$ext"
  [[ -s $dir/$name.crt ]] || { echo "pki: openssl failed to sign $name" >&2; return 1; }
}

# pki_kubelet_cert DIR HOSTNAME [SAN...]: the kubelet's certificate, DIR/kubelet-HOSTNAME.{crt,key}.
#   The Node authorizer and NodeRestriction identify a kubelet by CN=system:node:<hostname> in
#   O=system:nodes. The certificate is valid for both directions: as the kubelet's client
#   certificate towards the API server and as its serving certificate (give the node's IPs
#   as SANs, e.g. IP:10.244.0.1).
pki_kubelet_cert() {
  local dir=$1 host=$2
  shift 2
  pki_cert "$dir" "kubelet-$host" "system:node:$host" system:nodes both "DNS:$host" "$@"
}

# pki_service_account_keys DIR: DIR/sa.key (signs ServiceAccount tokens) and DIR/sa.pub.
pki_service_account_keys() {
  local dir=$1
  [[ -s $dir/sa.key && -s $dir/sa.pub ]] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/sa.key" 2>/dev/null
  chmod 600 "$dir/sa.key"
  openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
}

# pki_kubeconfig FILE SERVER CA_CRT USER CERT KEY: a kubeconfig authenticating with a client
#   certificate. The data is embedded, so the file keeps working when copied elsewhere.
pki_kubeconfig() {
  local file=$1 server=$2 ca=$3 user=$4 cert=$5 key=$6
  _pki_write_kubeconfig "$file" "$server" "$ca" "$user" \
    "    client-certificate-data: $(base64 -w0 <"$cert")
    client-key-data: $(base64 -w0 <"$key")"
}

# pki_token_kubeconfig FILE SERVER CA_CRT USER TOKEN: a kubeconfig authenticating with a
#   bearer token (a ServiceAccount token from the TokenRequest API).
pki_token_kubeconfig() {
  local file=$1 server=$2 ca=$3 user=$4 token=$5
  _pki_write_kubeconfig "$file" "$server" "$ca" "$user" "    token: $token"
}

_pki_write_kubeconfig() {
  local file=$1 server=$2 ca=$3 user=$4 credentials=$5 tmp
  # Written next to the target and renamed: a reader (a test process, a concurrent run)
  # never sees half a file.
  tmp=$(mktemp "$file.XXXXXX")
  chmod 600 "$tmp"
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pgop
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$ca")
users:
- name: $user
  user:
$credentials
contexts:
- name: $user@pgop
  context:
    cluster: pgop
    user: $user
current-context: $user@pgop
EOF
  mv -f "$tmp" "$file"
}
