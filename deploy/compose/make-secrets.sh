#!/bin/sh
# Random secrets for compose.yaml, written once into ./secrets/; existing files are kept. The directory is
# yours alone (0700); the files are 0644 because compose bind-mounts them as they are and the containers
# read them as other users (StudyShelf runs as uid 10001).
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
chmod 700 secrets
umask 022
make_secret() {
    [ -s "secrets/$1" ] || head -c "$2" /dev/urandom | base64 | tr -d '\n/+=' > "secrets/$1"
}
make_secret studyshelf_secret_key 48
make_secret db_password 24
make_secret s3_access_key 15
make_secret s3_secret_key 30
echo "Secrets are in $(pwd)/secrets/."
