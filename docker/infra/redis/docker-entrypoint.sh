#!/bin/sh
# Entrypoint of tmt-infra/redis:7: the official redis image's behaviour.
#  - `IMAGE --appendonly yes` or `IMAGE /path/redis.conf` runs redis-server with those arguments.
#  - As root: /data is handed to user redis, then this runs again as redis (setpriv; exec all the way, so
#    redis-server is the container's process 1 and gets docker's SIGTERM: it saves and exits cleanly).
#  - Protected mode is off by default (the official image compiles it so): without a password Redis would
#    otherwise refuse every client that is not on the container's loopback, i.e. every published-port one.
#    A later `--protected-mode yes` turns it on again. With a config file the file decides (redis-server
#    lets command-line options override the file, so none is added).
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = redis-server ]; then
	shift
	if [ "${1%.conf}" = "${1:-}" ]; then
		set -- --protected-mode no "$@"
	fi
	set -- redis-server "$@"
	# Files Redis writes are private unless the caller chose a umask.
	[ "$(umask)" != 0022 ] || umask 0077
fi

exec "$@"
