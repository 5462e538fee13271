#!/bin/sh
# Secrets arrive as files (compose `secrets:`, Kubernetes secret volumes): /run/secrets/STUDYSHELF_<NAME> (and
# PGPASSWORD, which libpq reads for both PostgreSQL URLs) become environment variables, so the settings never
# sit in the compose file or in `docker inspect`. Then `studyshelf ARGS` replaces this shell as PID 1.
set -eu
secrets=${SECRETS_DIR:-/run/secrets}
if [ -d "$secrets" ]; then
    for file in "$secrets"/STUDYSHELF_* "$secrets"/PGPASSWORD; do
        [ -f "$file" ] || continue
        name=$(basename "$file")
        value=$(cat "$file")
        export "$name=$value"
    done
fi
exec python -m studyshelf "$@"
