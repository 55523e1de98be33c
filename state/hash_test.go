package state

import (
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

// TestPartitionMatchesKafkaHash: the owner of a customer is where
// kafka-go's Hash balancer puts a message keyed by its id.
func TestPartitionMatchesKafkaHash(t *testing.T) {
	var h kafka.Hash
	for _, n := range []int{1, 2, 3, 4, 12, 64} {
		parts := make([]int, n)
		for i := range parts {
			parts[i] = i
		}
		for i := range 2000 {
			id := fmt.Sprintf("cust-%06d", i)
			if i%7 == 0 {
				id = fmt.Sprintf("{x}:%d é", i*7919)
			}
			want := h.Balance(kafka.Message{Key: []byte(id)}, parts...)
			if got := Partition(id, n); got != want {
				t.Fatalf("Partition(%q, %d) = %d, kafka-go's Hash says %d", id, n, got, want)
			}
			if got := Partition([]byte(id), n); got != want {
				t.Fatalf("Partition([]byte(%q), %d) = %d, want %d", id, n, got, want)
			}
		}
	}
}
