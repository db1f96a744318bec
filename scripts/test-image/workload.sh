# The test image's default workload. PID 1 ignores SIGTERM unless it traps it, so trap it: a stop
# then ends the container at once instead of after the grace period. `sleep & wait` lets the trap
# run without waiting for the sleep to finish.
trap 'exit 0' TERM INT
httpd -p 80 -h /www
echo "berth test workload: serving /www on port 80"
while :; do
  sleep 1 &
  wait $!
  echo "alive"
done
