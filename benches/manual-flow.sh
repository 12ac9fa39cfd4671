#!/usr/bin/env bash
# The documented manual flow (README, "What it does", left column), scripted: the baseline that
# `make bench` times against `kubectl onboard USER --group dev --approve`.
#
#   benches/manual-flow.sh USER [GROUP] [CLUSTER]
#
# Uses the current KUBECONFIG (an administrator's), writes USER's key, request and certificate
# into a temporary directory, and adds user USER and context USER@CLUSTER to that kubeconfig.
# The request object is named USER and left in the cluster, as the manual flow leaves it.
set -euo pipefail

user=${1:?usage: manual-flow.sh USER [GROUP] [CLUSTER]}
group=${2:-dev}
cluster=${3:-local}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The key, 2. the request.
openssl genrsa -out "$work/$user.key" 2048 2>/dev/null
openssl req -new -key "$work/$user.key" -subj "/CN=$user/O=$group" -out "$work/$user.csr"

# 3. The CertificateSigningRequest object with the base64 request.
kubectl apply -f - >/dev/null <<EOF
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: $user
spec:
  request: $(base64 -w0 "$work/$user.csr")
  signerName: kubernetes.io/kube-apiserver-client
  usages: ["client auth"]
EOF

# 4. Approve it.
kubectl certificate approve "$user" >/dev/null

# 5. Poll for the certificate every 50 ms, then decode it.
until cert=$(kubectl get csr "$user" -o jsonpath='{.status.certificate}') && [[ -n "$cert" ]]; do
  sleep 0.05
done
base64 -d <<<"$cert" >"$work/$user.crt"

# 6. The user, 7. the context.
kubectl config set-credentials "$user" --client-certificate="$work/$user.crt" \
  --client-key="$work/$user.key" --embed-certs >/dev/null
kubectl config set-context "$user@$cluster" --cluster="$cluster" --user="$user" >/dev/null
