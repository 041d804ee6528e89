"""The project's benchmark (`bench/run`): latency, concurrency, throughput, round trips, RSS."""
