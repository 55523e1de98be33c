// Package crashtest kills a real `churnwatch run` process with SIGKILL at
// random moments of a backfill, restarts it each time, and then checks the
// guarantees of the README against an uninterrupted offline run of the
// same engine: every customer's state in Redis equal, every alert on the
// alert topic (at least once, by CloudEvent id and time) and none extra,
// every invalid message dead-lettered and nothing else.
//
// The test builds cmd/churnwatch, starts a kfake broker (real Kafka
// protocol over TCP) and a redis-server, writes a synthetic population's
// history to the source topics with kafka-go, and runs the binary against
// them. The default size is small (50,000 events, 5 kills); the full size:
//
//	go test ./crashtest -run TestCrash -crash.events 1000000 -crash.kills 20 -v -timeout 60m
//
// Each run prints its seed; -crash.seed replays the same events and the
// same random draws for the kills (the processor's own timing still
// varies). -crash.expire sets the share of restarts that wait for the
// broker to expire the killed instance's group members, -crash.max-delay
// the longest delay before a kill, -crash.build-flags extra go build flags
// for the binary (-race, say). The processor's output is kept in
// churnwatch.log in the test's temporary directory; its tail is printed
// when the test fails.
package crashtest
