#!/bin/sh
# Started by private-rabbit.ts beside a private RabbitMQ node: once the test process PARENT_PID
# is gone without stopping the node (a killed worker runs no afterAll), stop the node, kill what
# is left of it (found by its node name in the environment; never epmd, which serves every node),
# and remove its directory.  Usage: private-rabbit-watchdog.sh PARENT_PID NODE DIR RABBITMQCTL
parent=$1 node=$2 dir=$3 rabbitmqctl=$4
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
"$rabbitmqctl" -n "$node" shutdown >/dev/null 2>&1
for environ in /proc/[0-9]*/environ; do
  proc=${environ%/environ}
  [ "$(cat "$proc/comm" 2>/dev/null)" = epmd ] && continue
  if tr '\0' '\n' <"$environ" 2>/dev/null | grep -qxF "RABBITMQ_NODENAME=$node"; then
    kill -9 "${proc#/proc/}" 2>/dev/null
  fi
done
rm -rf "$dir"
