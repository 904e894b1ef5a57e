#!/usr/bin/env bash
# Entrypoint of tmt-infra/postgres:15: the official postgres image's behaviour, in short.
#  - As root: prepare the data and socket directories, then run this again as user postgres (setpriv;
#    exec all the way, so the postmaster is the container's process 1 and gets docker's stop signal).
#  - An empty data directory: initdb with POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_INITDB_ARGS, a
#    pg_hba.conf line `host all all all $POSTGRES_HOST_AUTH_METHOD` (default: password_encryption, i.e.
#    scram-sha-256), a server on the socket only (no TCP yet, so a healthcheck over TCP cannot call the
#    initialisation "ready") to create POSTGRES_DB and run /docker-entrypoint-initdb.d/*.sh|.sql|.sql.gz.
#  - A data directory with a cluster: started as it is; the variables are not read.
# Every variable can come from a file instead: POSTGRES_PASSWORD_FILE=/run/secrets/... and so on.
set -Eeo pipefail

# file_env VAR [DEFAULT]: $VAR, else the contents of the file $VAR_FILE, else DEFAULT (not both set).
file_env() {
	local var=$1 default=${2:-}
	local file_var="${var}_FILE"
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set (but are exclusive)"
		exit 1
	fi
	local value=$default
	if [ -n "${!var:-}" ]; then
		value=${!var}
	elif [ -n "${!file_var:-}" ]; then
		value=$(<"${!file_var}")
	fi
	export "$var"="$value"
	unset "$file_var"
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
}

verify_minimum_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOE'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the superuser,
			       or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without a password.
		EOE
		exit 1
	fi
	if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
		echo >&2 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every connection is let in without a password.'
	fi
}

init_database_dir() {
	# POSTGRES_INITDB_ARGS is a string of arguments, split as the official image does (eval). The password
	# reaches initdb through a pipe, never a file or the command line.
	if [ -n "$POSTGRES_PASSWORD" ]; then
		eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
	else
		eval 'initdb --username="$POSTGRES_USER" '"$POSTGRES_INITDB_ARGS"
	fi
}

setup_hba_conf() {
	local auth
	auth=$(postgres -C password_encryption -D "$PGDATA")
	: "${POSTGRES_HOST_AUTH_METHOD:=$auth}"
	{
		printf '\n'
		if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
			printf '# warning trust is enabled for all connections\n'
		fi
		printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"
}

# The initialisation server listens on its Unix socket only, so nothing outside the container (and no
# healthcheck over TCP) reaches it before the real server runs.
temp_server_start() {
	PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
}

temp_server_stop() {
	PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -m fast -w stop
}

process_sql() {
	PGHOST= PGHOSTADDR= psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

setup_db() {
	local exists
	exists=$(process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only --no-align <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
	)
	if [ -z "$exists" ]; then
		process_sql --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
	fi
}

process_init_files() {
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then echo "$0: running $f"; "$f"; else echo "$0: sourcing $f"; . "$f"; fi ;;
			*.sql) echo "$0: running $f"; process_sql --dbname "$POSTGRES_DB" -f "$f" ;;
			*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | process_sql --dbname "$POSTGRES_DB" ;;
			*/\*) ;;  # the directory is empty
			*) echo "$0: ignoring $f" ;;
		esac
	done
}

main() {
	# `docker run IMAGE -c shared_buffers=256MB` passes settings to the server.
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" != postgres ]; then
		exec "$@"  # psql, bash, ...
	fi

	if [ "$(id -u)" = 0 ]; then
		mkdir -p "$PGDATA"
		chown postgres:postgres "$PGDATA"
		chmod 0700 "$PGDATA"
		mkdir -p /var/run/postgresql
		chown postgres:postgres /var/run/postgresql
		chmod 3777 /var/run/postgresql
		export HOME=/var/lib/postgresql
		exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
	fi

	setup_env
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		verify_minimum_env
		# Started as another user (docker run --user): the directory must still be ours, and private.
		mkdir -p "$PGDATA"
		chmod 0700 "$PGDATA" || :
		init_database_dir
		setup_hba_conf
		export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
		temp_server_start
		setup_db
		process_init_files
		temp_server_stop
		unset PGPASSWORD
		echo
		echo 'PostgreSQL init process complete; ready for start up.'
		echo
	else
		echo
		echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
		echo
	fi
	exec "$@"
}

main "$@"
