# Sourced by the Dockerfiles' build stages: when docker/build-ca/ holds PEM files (a proxy's CA,
# docker/build-ca/README.md), npm, and pip in ./.venv once it exists, trust them as well as their
# usual roots.
extra=$(find /tmp/build-ca -maxdepth 1 -type f \( -name '*.pem' -o -name '*.crt' \) | sort)
if [ -n "$extra" ]; then
  # shellcheck disable=SC2086
  cat $extra > /tmp/build-ca.pem
  export NODE_EXTRA_CA_CERTS=/tmp/build-ca.pem
  if [ -x .venv/bin/python ]; then
    # pip's --cert replaces its roots (certifi's bundle) rather than adding to them.
    cat "$(.venv/bin/python -c 'from pip._vendor import certifi; print(certifi.where())')" /tmp/build-ca.pem > /tmp/pip-ca.pem
    export PIP_CERT=/tmp/pip-ca.pem
  fi
  echo "build-ca: also trusting $(grep -c 'BEGIN CERTIFICATE' /tmp/build-ca.pem) certificate(s) from docker/build-ca/"
fi
