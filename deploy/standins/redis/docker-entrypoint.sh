#!/bin/sh
# Like the official image: redis-server runs as redis, reachable from other containers.
set -eu
if [ "$1" = redis-server ]; then
    shift
    chown -R redis:redis /data
    exec runuser -u redis -- redis-server --protected-mode no "$@"
fi
exec "$@"
