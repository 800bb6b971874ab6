#!/usr/bin/env bash
# Starts the local services the tests need when they are not running, and waits until each one
# accepts connections. Fails loudly if one never does. Safe to run when they are already up.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2 seconds=$3
  for _ in $(seq 1 "$seconds"); do
    if listening "$port"; then echo "ensure-services: $name is up on $port"; return 0; fi
    sleep 1
  done
  echo "ensure-services: $name did not start listening on $port within ${seconds}s" >&2
  return 1
}

ensure_rabbitmq() {
  if ! listening 5672; then
    echo "ensure-services: starting RabbitMQ"
    rabbitmq-server -detached || true
  fi
  wait_for RabbitMQ 5672 90
  # The port opens before the broker finishes booting its applications.
  if command -v rabbitmqctl >/dev/null; then
    timeout 90 rabbitmqctl await_startup >/dev/null 2>&1 || true
  fi
}

for service in "$@"; do
  case "$service" in
    rabbitmq) ensure_rabbitmq ;;
    redis)
      if ! listening 6379; then
        echo "ensure-services: starting Redis"
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
          --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
      fi
      wait_for Redis 6379 30
      ;;
    nats)
      if ! listening 4222; then
        # Debian's package; the server must keep JetStream on (-js) for the NATS transport.
        if [ ! -x /usr/sbin/nats-server ] && command -v apt-get >/dev/null; then
          echo "ensure-services: installing Debian's nats-server"
          { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends nats-server; } >/dev/null 2>&1 || true
        fi
        echo "ensure-services: starting nats-server with JetStream"
        mkdir -p /var/lib/nats-server
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
          -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
      fi
      wait_for nats-server 4222 30
      ;;
    postgresql)
      if ! listening 5432; then
        echo "ensure-services: starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start || true
      fi
      wait_for PostgreSQL 5432 60
      ;;
    *) echo "ensure-services: unknown service $service" >&2; exit 2 ;;
  esac
done
