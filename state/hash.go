package state

// HashID is the 64-bit FNV-1a hash of an id, used where the state keeps ids
// only to recognise them again (event ids, ticket ids).
func HashID(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// Partition returns the internal partition, of n, that owns customer id:
// FNV-1a (32 bit) of the id modulo n, as kafka-go's Hash balancer (and
// Sarama's hash partitioner) place a message keyed by the id. The state
// stage's balancer and every reader of a customer's state use it.
func Partition[T string | []byte](id T, n int) int {
	if n <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	p := int32(h) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}
